// Linear probes on frozen features, as the official linear evaluations (dino-reference.md §2.13):
// a grid of classifiers (CLS of the last 1 or 4 blocks, with or without the mean patch token) × learning rates, all
// trained at once on the same minibatches with SGD (momentum 0.9, no weight decay), lr scaled by batch/256 and a
// cosine schedule to 0 per iteration; weights N(0, 0.01), bias 0; the best classifier is chosen by top-1 on the
// evaluation set (as dinov2 does). Features come precomputed with `layers:N` (features.ts), i.e. the eval transform
// without the official RandomResizedCrop/flip augmentation of the training images.
//
// Feature orders:
//   'concat' (dinov2):       [cls_{L-n+1}, ..., cls_L, (mean patch_L)]
//   'interleaved' (dino v1): n = 1 with the average: [c0, a0, c1, a1, ...] (stack on a last dim, then flatten);
//                            the released *_linearweights.pth of ViT-B depend on it. Without the average v1 = concat.
import { tf } from '../backend/tf.js';
import { readCheckpoint } from '../checkpoint/index.js';
import { saveSafetensors } from '../checkpoint/index.js';
import type { HostTensor } from '../checkpoint/types.js';
import { Rng } from '../util/rng.js';
import type { Matrix } from '../util/matrix.js';

export interface ProbeInput {
  /** CLS tokens of the last nBlocks blocks. */
  nBlocks: number;
  avgpool: boolean;
  layout: 'concat' | 'interleaved';
}

/**
 * Builds a classifier input from `layers:S` features ([cls_{L-S+1}..cls_L, avg_L], each `embedDim` wide).
 */
export function probeInput(layers: Matrix, embedDim: number, input: ProbeInput): Matrix {
  const D = embedDim;
  const S = layers.cols / D - 1;
  if (!Number.isInteger(S) || S < 1) throw new Error(`linear: features of width ${layers.cols} are not layers:N features of a ${D}-dim model`);
  const { nBlocks: n, avgpool } = input;
  if (n > S) throw new Error(`linear: ${n} blocks requested but the features hold the CLS of only ${S} (extract with --features layers:${n})`);
  if (input.layout === 'interleaved' && avgpool && n !== 1) throw new Error('linear: the v1 interleaved order exists only for 1 block with the average');
  const width = (n + (avgpool ? 1 : 0)) * D;
  const out = new Float32Array(layers.rows * width);
  for (let r = 0; r < layers.rows; r++) {
    const src = r * layers.cols;
    const dst = r * width;
    if (input.layout === 'interleaved' && avgpool) {
      const cls = src + (S - 1) * D;
      const avg = src + S * D;
      for (let d = 0; d < D; d++) {
        out[dst + 2 * d] = layers.data[cls + d]!;
        out[dst + 2 * d + 1] = layers.data[avg + d]!;
      }
      continue;
    }
    out.set(layers.data.subarray(src + (S - n) * D, src + S * D), dst);
    if (avgpool) out.set(layers.data.subarray(src + S * D, src + (S + 1) * D), dst + n * D);
  }
  return { data: out, rows: layers.rows, cols: width };
}

export interface LinearHead extends ProbeInput {
  /** [numClasses, inDim], PyTorch layout. */
  weight: Float32Array;
  bias: Float32Array;
  numClasses: number;
  inDim: number;
  source: string;
}

/** Logits [N, C] of a head on `layers:S` features. */
export function headLogits(head: LinearHead, layers: Matrix, embedDim: number): Matrix {
  const x = probeInput(layers, embedDim, head);
  if (x.cols !== head.inDim) throw new Error(`linear head ${head.source}: expects ${head.inDim} inputs, features give ${x.cols}`);
  const logits = tf.tidy(() =>
    tf.add(tf.matMul(tf.tensor2d(x.data, [x.rows, x.cols]), tf.tensor2d(head.weight, [head.numClasses, head.inDim]), false, true), tf.tensor1d(head.bias)),
  );
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  return { data, rows: x.rows, cols: head.numClasses };
}

/** Top-1 / top-5 accuracy (percent) of logits; ties rank the lower class first. Top-5 only when C >= 5 (as v1). */
export function accuracy(logits: Matrix, labels: ArrayLike<number>): { top1: number; top5: number | null } {
  let t1 = 0;
  let t5 = 0;
  const C = logits.cols;
  for (let i = 0; i < logits.rows; i++) {
    const y = labels[i]!;
    const vy = logits.data[i * C + y]!;
    let rank = 0;
    for (let c = 0; c < C; c++) {
      const v = logits.data[i * C + c]!;
      if (v > vy || (v === vy && c < y)) rank++;
    }
    if (rank === 0) t1++;
    if (rank < 5) t5++;
  }
  return { top1: (100 * t1) / logits.rows, top5: C >= 5 ? (100 * t5) / logits.rows : null };
}

export interface ProbeTrainOptions {
  embedDim: number;
  numClasses: number;
  /** Block counts to try (default [1, 4], those the features hold). */
  nBlocksList?: number[];
  /** Try with and without the mean patch token (default [false, true]). */
  avgpoolList?: boolean[];
  /** Base learning rates (scaled by batchSize/256); default dinov2's 13 values 1e-5 ... 0.1. */
  learningRates?: number[];
  epochs?: number;
  batchSize?: number;
  momentum?: number;
  seed?: number;
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

export const DINOV2_LEARNING_RATES = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1];

export interface ProbeResult {
  name: string;
  nBlocks: number;
  avgpool: boolean;
  lr: number;
  top1: number;
  top5: number | null;
  finalLoss: number;
}

export interface ProbeTraining {
  results: ProbeResult[];
  best: ProbeResult;
  bestHead: LinearHead;
}

/** Trains the whole grid on train features (layers:N), evaluates each on the eval features, returns the best head. */
export function trainLinearProbes(
  train: Matrix,
  trainLabels: ArrayLike<number>,
  evalFeats: Matrix,
  evalLabels: ArrayLike<number>,
  opts: ProbeTrainOptions,
): ProbeTraining {
  const D = opts.embedDim;
  const S = train.cols / D - 1;
  const nList = (opts.nBlocksList ?? [1, 4]).filter((n) => n <= S);
  if (nList.length === 0) throw new Error(`linear: the features hold ${S} blocks; extract with --features layers:4`);
  const lrs = opts.learningRates ?? DINOV2_LEARNING_RATES;
  const batchSize = Math.min(opts.batchSize ?? 128, train.rows);
  const epochs = opts.epochs ?? 10;
  const momentum = opts.momentum ?? 0.9;
  const C = opts.numClasses;
  const N = train.rows;
  const y = Int32Array.from({ length: N }, (_, i) => Number(trainLabels[i]));
  for (const v of y) if (!(v >= 0 && v < C)) throw new Error(`linear: training label ${v} outside 0..${C - 1}`);
  const itersPerEpoch = Math.ceil(N / batchSize);
  const total = epochs * itersPerEpoch;
  const rng = new Rng([opts.seed ?? 0, 0x11a]);

  const results: ProbeResult[] = [];
  let best: { r: ProbeResult; head: LinearHead } | null = null;
  for (const nBlocks of nList) {
    for (const avgpool of opts.avgpoolList ?? [false, true]) {
      const input: ProbeInput = { nBlocks, avgpool, layout: 'concat' };
      const X = probeInput(train, D, input);
      const Din = X.cols;
      const L = lrs.length;
      // all learning rates of this input at once: W [L*C, Din], b [L*C]
      const W = tf.variable(tf.tensor2d(Float32Array.from({ length: L * C * Din }, () => rng.normal(0, 0.01)), [L * C, Din]));
      const b = tf.variable(tf.zeros([L * C]));
      const bufW = tf.variable(tf.zeros([L * C, Din]));
      const bufB = tf.variable(tf.zeros([L * C]));
      const baseLr = tf.tensor1d(Float32Array.from({ length: L * C }, (_, i) => (lrs[Math.floor(i / C)]! * batchSize) / 256));
      const Xt = tf.tensor2d(X.data, [N, Din]);
      let it = 0;
      let lastLoss = new Float64Array(L);
      for (let epoch = 0; epoch < epochs; epoch++) {
        const order = new Rng([opts.seed ?? 0, epoch]).permutation(N);
        const lossSum = new Float64Array(L);
        for (let s = 0; s < N; s += batchSize) {
          const idx = order.slice(s, s + batchSize);
          const B = idx.length;
          const scale = 0.5 * (1 + Math.cos((Math.PI * it) / total)); // CosineAnnealingLR(T_max = total iterations)
          const losses = tf.tidy(() => {
            const xb = tf.gather(Xt, tf.tensor1d(Int32Array.from(idx), 'int32'));
            const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(idx, (i) => y[i]!), 'int32'), C).reshape([B, 1, C]);
            const logits = tf.add(tf.matMul(xb, W, false, true), b).reshape([B, L, C]);
            const logp = tf.logSoftmax(logits, -1);
            const loss = tf.neg(tf.sum(tf.mul(logp, onehot), [0, 2])).div(B); // [L]
            const g = tf.div(tf.sub(tf.exp(logp), onehot), B).reshape([B, L * C]); // dLoss/dlogits
            const gW = tf.matMul(g, xb, true, false);
            const gB = tf.sum(g, 0);
            bufW.assign(tf.add(tf.mul(bufW, momentum), gW));
            bufB.assign(tf.add(tf.mul(bufB, momentum), gB));
            const lr = tf.mul(baseLr, scale);
            W.assign(tf.sub(W, tf.mul(bufW, lr.reshape([L * C, 1]))));
            b.assign(tf.sub(b, tf.mul(bufB, lr)));
            return loss;
          });
          const lv = losses.dataSync();
          losses.dispose();
          lv.forEach((v, l) => (lossSum[l]! += (v * B) / N));
          it++;
        }
        lastLoss = lossSum;
        opts.onEpoch?.(epoch, lossSum.reduce((a, v) => a + v, 0) / L);
      }
      const Wh = W.dataSync() as Float32Array;
      const bh = b.dataSync() as Float32Array;
      for (const t of [W, b, bufW, bufB, baseLr, Xt]) t.dispose();
      lrs.forEach((lr, l) => {
        const head: LinearHead = {
          ...input,
          weight: Wh.slice(l * C * Din, (l + 1) * C * Din),
          bias: bh.slice(l * C, (l + 1) * C),
          numClasses: C,
          inDim: Din,
          source: 'trained probe',
        };
        const acc = accuracy(headLogits(head, evalFeats, D), evalLabels);
        const r: ProbeResult = { name: `classifier_${nBlocks}_blocks_avgpool_${avgpool}_lr_${lr}`, nBlocks, avgpool, lr, ...acc, finalLoss: lastLoss[l]! };
        results.push(r);
        if (!best || r.top1 > best.r.top1) best = { r, head };
      });
    }
  }
  return { results, best: best!.r, bestHead: best!.head };
}

/** Saves a head as safetensors (weight, bias) with its input layout in the metadata. */
export function saveLinearHead(path: string, head: LinearHead): void {
  saveSafetensors(
    path,
    new Map<string, HostTensor>([
      ['weight', { dtype: 'float32', shape: [head.numClasses, head.inDim], data: head.weight }],
      ['bias', { dtype: 'float32', shape: [head.numClasses], data: head.bias }],
    ]),
    { dinots_linear_head: JSON.stringify({ nBlocks: head.nBlocks, avgpool: head.avgpool, layout: head.layout }) },
  );
}

/**
 * Loads a linear head: one saved by saveLinearHead, a DINOv2 hub head (`*_linear_head.pth`: weight [C, 2D] on
 * [cls, avg]; `*_linear4_head.pth`: [C, 5D] on [cls×4, avg]) or a DINO v1 `*_linearweights.pth`
 * ({state_dict: {module.linear.weight, module.linear.bias}}: [C, 4D] = CLS of 4 blocks for ViT-S,
 * [C, 2D] = interleaved CLS/avg of the last block for ViT-B). `family` of the backbone tells v1 from v2 files.
 */
export function loadLinearHead(path: string, embedDim: number, family: 'dino' | 'dinov2'): LinearHead {
  const ck = readCheckpoint(path);
  const sd = ck.stateDict;
  const w = sd.get('weight') ?? sd.get('linear.weight');
  const bias = sd.get('bias') ?? sd.get('linear.bias');
  if (!w || !bias || w.shape.length !== 2) {
    throw new Error(`${path}: not a linear head (expected 'weight' [C, F] and 'bias', or v1 'module.linear.weight'); keys: ${[...sd.keys()].join(', ')}`);
  }
  const [C, F] = w.shape as [number, number];
  const D = embedDim;
  if (F % D !== 0) throw new Error(`${path}: head input width ${F} is not a multiple of the model width ${D}; wrong backbone?`);
  const k = F / D;
  let input: ProbeInput;
  if (ck.metadata.dinots_linear_head) input = JSON.parse(ck.metadata.dinots_linear_head) as ProbeInput;
  else if (family === 'dinov2') {
    if (k !== 2 && k !== 5) throw new Error(`${path}: a DINOv2 head has 2D or 5D inputs, this one ${k}D`);
    input = { nBlocks: k - 1, avgpool: true, layout: 'concat' };
  } else {
    input = k === 2 ? { nBlocks: 1, avgpool: true, layout: 'interleaved' } : { nBlocks: k, avgpool: false, layout: 'concat' };
  }
  return { ...input, weight: toF32(w), bias: toF32(bias), numClasses: C, inDim: F, source: path };
}

function toF32(t: HostTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
}
