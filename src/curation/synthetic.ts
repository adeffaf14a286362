// Synthetic embeddings for the curation tests and benchmark: unit vectors around random cluster centres, planted
// near-copies, and pair-level precision/recall of predicted duplicate groups.
import { Rng } from '../util/rng.js';
import { type Matrix, makeMatrix, l2NormalizeRows, rowOf } from '../util/matrix.js';

/** `n` unit vectors in `dim` dims around `clusters` random centres; `spread` is the per-dim noise std relative to the centre norm. */
export function clusteredVectors(n: number, dim: number, clusters: number, spread: number, seed = 0): { x: Matrix; label: Int32Array } {
  const rng = new Rng(seed);
  const centres = makeMatrix(clusters, dim);
  for (let i = 0; i < centres.data.length; i++) centres.data[i] = rng.normal();
  const unitCentres = l2NormalizeRows(centres);
  const x = makeMatrix(n, dim);
  const label = new Int32Array(n);
  const s = spread / Math.sqrt(dim);
  for (let i = 0; i < n; i++) {
    const c = i % clusters;
    label[i] = c;
    const cr = rowOf(unitCentres, c);
    const r = rowOf(x, i);
    for (let j = 0; j < dim; j++) r[j] = cr[j]! + s * rng.normal();
  }
  return { x: l2NormalizeRows(x), label };
}

/** Appends `copies` near-copies (unit noise of the given relative size) of random rows; returns the pairs planted. */
export function plantDuplicates(x: Matrix, copies: number, noise: number, seed = 1): { x: Matrix; pairs: [number, number][] } {
  const rng = new Rng(seed);
  const out = makeMatrix(x.rows + copies, x.cols);
  out.data.set(x.data);
  const pairs: [number, number][] = [];
  const s = noise / Math.sqrt(x.cols);
  for (let c = 0; c < copies; c++) {
    const src = rng.randint(0, x.rows - 1);
    const r = rowOf(out, x.rows + c);
    const o = rowOf(x, src);
    for (let j = 0; j < x.cols; j++) r[j] = o[j]! + s * rng.normal();
    pairs.push([src, x.rows + c]);
  }
  return { x: l2NormalizeRows(out), pairs };
}

/**
 * Pair-level precision/recall of predicted duplicate groups (`component` per row) against planted (original, copy)
 * pairs: the true groups are the connected components of the planted pairs.
 */
export function pairScores(component: Int32Array, pairs: [number, number][], n: number): { precision: number; recall: number; predictedPairs: number; truePairs: number } {
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) truth[i] = i;
  const find = (a: number): number => (truth[a] === a ? a : (truth[a] = find(truth[a]!)));
  for (const [a, b] of pairs) truth[find(a)] = find(b);
  const countPairs = (label: (i: number) => number) => {
    const sizes = new Map<number, number>();
    for (let i = 0; i < n; i++) sizes.set(label(i), (sizes.get(label(i)) ?? 0) + 1);
    let s = 0;
    for (const v of sizes.values()) s += (v * (v - 1)) / 2;
    return s;
  };
  const predicted = countPairs((i) => component[i]!);
  const trueCount = countPairs((i) => find(i));
  // Pairs in the same predicted group and the same true group.
  const both = countPairs((i) => component[i]! * n + find(i));
  return { precision: predicted === 0 ? 1 : both / predicted, recall: trueCount === 0 ? 1 : both / trueCount, predictedPairs: predicted, truePairs: trueCount };
}
