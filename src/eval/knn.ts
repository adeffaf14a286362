// The official weighted k-NN classifier (dino eval_knn.py, dinov2 eval/knn.py; dino-reference.md §2.13):
// L2-normalised features, cosine top-k over the training bank, each neighbour votes for its class with weight
// exp(sim / T), votes are summed per class, and classes are ranked by their vote.
//
// Determinism and ties (documented contract, checked by test/eval/knn.test.ts against a naive implementation):
// - Neighbours: higher similarity first; among equal similarities the lower training index first (see topk.ts).
//   The neighbours for a smaller k are the first k of those for the largest k (as dinov2 does).
// - Classes: higher vote first; among equal votes the lower class index first, including classes with no vote at all
//   (the official `probs.sort(1, True)` keeps this order on CPU). So top-5 can count a zero-vote class when fewer than
//   five classes received votes, exactly as the official code does; for k < 5 only the first k classes count (v1).
// - Votes are accumulated in float64 (the official code uses float32); only exact or ~1e-7-relative ties can differ.
// - v2 weights with softmax(sims/T) instead of exp(sims/T): a positive factor per query, so predictions are the same.
import { tf } from '../backend/tf.js';
import { Rng } from '../util/rng.js';
import { l2NormalizeRows, selectRows, toMatrix, type Matrix } from '../util/matrix.js';
import { topkInnerProduct, type TopK, type TopKOptions } from './topk.js';

export interface KnnOptions extends Omit<TopKOptions, 'excludeSelf'> {
  /** One k or several (default [10, 20, 100, 200]). */
  k?: number | number[];
  /** Temperature of the vote weights (default 0.07). */
  T?: number;
  /** Number of classes (default: largest label + 1). */
  numClasses?: number;
  /** L2-normalise the features first (default true, as the official protocol). */
  normalize?: boolean;
}

export interface KnnResultForK {
  k: number;
  /** The k actually used: k clipped to the size of the training bank. */
  kUsed: number;
  /** Percent of test samples whose top-ranked class is right. */
  top1: number;
  /** Percent whose label is among the first min(5, k) ranked classes. */
  top5: number;
  /** Top-1 accuracy (percent) per class; NaN for classes absent from the test set. */
  perClassTop1: number[];
  /** Mean of perClassTop1 over classes present in the test set (dinov2's "mean per-class accuracy"). */
  meanPerClassTop1: number;
  /** Predicted class per test sample. */
  predictions: Int32Array;
}

export interface KnnResult {
  T: number;
  numClasses: number;
  numTrain: number;
  numTest: number;
  results: KnnResultForK[];
}

export const DEFAULT_KS = [10, 20, 100, 200];

function kList(k: number | number[] | undefined): number[] {
  return k === undefined ? DEFAULT_KS : Array.isArray(k) ? k : [k];
}

function toLabels(x: ArrayLike<number> | tf.Tensor, n: number, what: string): Int32Array {
  const a = x instanceof tf.Tensor ? x.dataSync() : x;
  if (a.length !== n) throw new Error(`k-NN: ${what} has ${a.length} labels for ${n} feature rows`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(a[i]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`k-NN: ${what}[${i}] = ${a[i]} is not a class index (integer >= 0)`);
    out[i] = v;
  }
  return out;
}

/**
 * Weighted k-NN evaluation of test features against a bank of training features.
 * Features are [N, D] (host matrices or tensors), labels integer class indices.
 */
export function knnEvaluate(
  trainFeats: Matrix | tf.Tensor,
  trainLabels: ArrayLike<number> | tf.Tensor,
  testFeats: Matrix | tf.Tensor,
  testLabels: ArrayLike<number> | tf.Tensor,
  opts: KnnOptions = {},
): KnnResult {
  let train = toMatrix(trainFeats, 'train features');
  let test = toMatrix(testFeats, 'test features');
  const ytrain = toLabels(trainLabels, train.rows, 'train labels');
  const ytest = toLabels(testLabels, test.rows, 'test labels');
  if (train.rows === 0) throw new Error('k-NN: the training bank is empty');
  const ks = [...new Set(kList(opts.k))].sort((a, b) => a - b);
  for (const k of ks) if (!Number.isInteger(k) || k < 1) throw new Error(`k-NN: k must be positive integers, got ${k}`);
  const T = opts.T ?? 0.07;
  if (!(T > 0)) throw new Error(`k-NN: temperature T must be > 0, got ${T}`);
  let maxLabel = 0;
  for (const v of ytrain) maxLabel = Math.max(maxLabel, v);
  for (const v of ytest) maxLabel = Math.max(maxLabel, v);
  const numClasses = opts.numClasses ?? maxLabel + 1;
  if (maxLabel >= numClasses) throw new Error(`k-NN: label ${maxLabel} is out of range for numClasses=${numClasses}`);
  if (opts.normalize ?? true) {
    train = l2NormalizeRows(train);
    test = l2NormalizeRows(test);
  }
  const maxK = Math.min(ks[ks.length - 1]!, train.rows);
  const nn = topkInnerProduct(test, train, maxK, opts);
  // Only NaN or infinite similarities leave a neighbour slot empty.
  const empty = nn.indices.indexOf(-1);
  if (empty >= 0) throw new Error(`k-NN: test row ${Math.floor(empty / nn.k)} has NaN or infinite similarities; check the features for NaN/Inf`);
  return { T, numClasses, numTrain: train.rows, numTest: test.rows, results: ks.map((k) => scoreK(nn, ytrain, ytest, Math.min(k, maxK), k, T, numClasses)) };
}

function scoreK(
  nn: TopK,
  ytrain: Int32Array,
  ytest: Int32Array,
  k: number,
  kReported: number,
  T: number,
  numClasses: number,
): KnnResultForK {
  const n = ytest.length;
  const votes = new Float64Array(numClasses);
  const predictions = new Int32Array(n);
  const perClassCorrect = new Float64Array(numClasses);
  const perClassCount = new Float64Array(numClasses);
  const top5Width = Math.min(5, k, numClasses);
  let top1 = 0;
  let top5 = 0;
  for (let q = 0; q < n; q++) {
    votes.fill(0);
    for (let j = 0; j < k; j++) {
      const o = q * nn.k + j;
      votes[ytrain[nn.indices[o]!]!]! += Math.exp(nn.scores[o]! / T);
    }
    const target = ytest[q]!;
    // rank of the target = number of classes ranked before it (higher vote, or equal vote and lower index)
    const vt = votes[target]!;
    let rank = 0;
    let best = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = votes[c]!;
      if (v > vt || (v === vt && c < target)) rank++;
      if (v > votes[best]!) best = c;
    }
    predictions[q] = best;
    perClassCount[target]!++;
    if (rank === 0) {
      top1++;
      perClassCorrect[target]!++;
    }
    if (rank < top5Width) top5++;
  }
  const perClassTop1 = Array.from(perClassCount, (cnt, c) => (cnt > 0 ? (100 * perClassCorrect[c]!) / cnt : NaN));
  const present = perClassTop1.filter((v) => !Number.isNaN(v));
  return {
    k: kReported,
    kUsed: k,
    top1: (100 * top1) / n,
    top5: (100 * top5) / n,
    perClassTop1,
    meanPerClassTop1: present.reduce((s, v) => s + v, 0) / Math.max(1, present.length),
    predictions,
  };
}

/**
 * Few-shot subset as in dinov2's filter_train: for every class (ascending), `nPerClass` random members (all of them
 * when the class is smaller). Our own seeded permutation: the draws cannot equal torch.randperm's.
 */
export function fewShotIndices(labels: ArrayLike<number>, nPerClass: number, seed: number): Int32Array {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = Number(labels[i]);
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(i);
  }
  const rng = new Rng([seed, nPerClass]);
  const out: number[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = byClass.get(c)!;
    const perm = rng.permutation(members.length);
    for (let j = 0; j < Math.min(nPerClass, members.length); j++) out.push(members[perm[j]!]!);
  }
  return Int32Array.from(out);
}

export interface FewShotResult {
  nPerClass: number;
  tries: number;
  /** Mean over tries, per k (k ≤ nPerClass, plus nPerClass itself, as dinov2). */
  results: { k: number; top1: number; top5: number; meanPerClassTop1: number }[];
}

/** k-NN on `tries` random few-shot subsets of the training set (seeds 0..tries-1), averaged. */
export function knnFewShot(
  trainFeats: Matrix | tf.Tensor,
  trainLabels: ArrayLike<number> | tf.Tensor,
  testFeats: Matrix | tf.Tensor,
  testLabels: ArrayLike<number> | tf.Tensor,
  nPerClass: number,
  opts: KnnOptions & { tries?: number } = {},
): FewShotResult {
  const train = toMatrix(trainFeats, 'train features');
  const ytrain = toLabels(trainLabels, train.rows, 'train labels');
  const tries = opts.tries ?? 1;
  const ks = [...new Set([...kList(opts.k), nPerClass])].filter((k) => k <= nPerClass).sort((a, b) => a - b);
  let numClasses = opts.numClasses;
  if (numClasses === undefined) {
    const yt = testLabels instanceof tf.Tensor ? testLabels.dataSync() : testLabels;
    numClasses = Math.max(...ytrain, ...Array.from(yt, Number)) + 1;
  }
  const sums = ks.map((k) => ({ k, top1: 0, top5: 0, meanPerClassTop1: 0 }));
  for (let t = 0; t < tries; t++) {
    const idx = fewShotIndices(ytrain, nPerClass, t);
    const sub = selectRows(train, idx);
    const r = knnEvaluate(sub, Array.from(idx, (i) => ytrain[i]!), testFeats, testLabels, { ...opts, k: ks, numClasses });
    r.results.forEach((res, j) => {
      sums[j]!.top1 += res.top1 / tries;
      sums[j]!.top5 += res.top5 / tries;
      sums[j]!.meanPerClassTop1 += res.meanPerClassTop1 / tries;
    });
  }
  return { nPerClass, tries, results: sums };
}
