// Seeded k-means (Lloyd) with assignments by batched matrix products in TF.js, k-means++ initialisation on a random
// sample (full k-means++ costs k passes over the data), and re-seeding of empty clusters from the farthest points.
import { tf } from '../backend/tf.js';
import { Rng } from '../util/rng.js';
import { type Matrix, makeMatrix, rowOf, rowSquaredNorms, selectRows, squaredDistance } from '../util/matrix.js';

export interface KMeansOptions {
  k: number;
  /** Lloyd iterations at most (default 20). */
  iters?: number;
  seed?: number;
  /** Points drawn for k-means++ (default min(n, max(4k, 1000))). */
  initSampleSize?: number;
  /** Starting centroids instead of k-means++ (k rows). */
  init?: Matrix;
  /** Stop when the relative drop in inertia falls below this (default 1e-5). */
  tol?: number;
  /** Rows per assignment block (bounds memory at block x k scores). */
  block?: number;
  onIter?: (iter: number, inertia: number) => void;
}

export interface KMeansResult {
  centroids: Matrix;
  assignments: Int32Array;
  /** Squared L2 distance of every point to the centroid it was last assigned against. */
  distances: Float32Array;
  sizes: Int32Array;
  inertia: number;
  iterations: number;
  /** Empty clusters re-seeded over the run. */
  reseeded: number;
}

/** Nearest centroid (squared L2) of every row, by blocks of X . C^T. */
export async function assignToCentroids(
  x: Matrix,
  centroids: Matrix,
  block = 4096,
): Promise<{ assignments: Int32Array; distances: Float32Array }> {
  if (x.cols !== centroids.cols) {
    throw new Error(`k-means: data has ${x.cols} dims but centroids have ${centroids.cols}`);
  }
  const assignments = new Int32Array(x.rows);
  const distances = new Float32Array(x.rows);
  const xNorm = rowSquaredNorms(x);
  const d = x.cols;
  // [D, k] right-hand side (plain, not transposeB: much faster on wasm) and the |c|^2 row.
  const cT = tf.tidy(() => tf.transpose(tf.tensor2d(centroids.data, [centroids.rows, d])));
  const cNorm = tf.tensor1d(rowSquaredNorms(centroids));
  for (let s = 0; s < x.rows; s += block) {
    const e = Math.min(x.rows, s + block);
    const [idxT, minT] = tf.tidy(() => {
      const xb = tf.tensor2d(x.data.subarray(s * d, e * d), [e - s, d]);
      // |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every c so it is added afterwards.
      const partial = tf.sub(cNorm, tf.mul(tf.matMul(xb, cT), 2));
      return [tf.argMin(partial, 1), tf.min(partial, 1)];
    });
    const idx = (await idxT!.data()) as Int32Array;
    const mins = (await minT!.data()) as Float32Array;
    idxT!.dispose();
    minT!.dispose();
    assignments.set(idx, s);
    for (let i = s; i < e; i++) distances[i] = Math.max(0, xNorm[i]! + mins[i - s]!);
  }
  cT.dispose();
  cNorm.dispose();
  return { assignments, distances };
}

/** k-means++ seeding (D^2 sampling) on a random sample of the rows. */
export function kmeansPlusPlus(x: Matrix, k: number, rng: Rng, sampleSize?: number): Matrix {
  const n = x.rows;
  if (k > n) throw new Error(`k-means: k=${k} is larger than the number of points (${n}); lower k`);
  const m = Math.min(n, Math.max(k, sampleSize ?? Math.max(4 * k, 1000)));
  const sample = m === n ? Array.from({ length: n }, (_, i) => i) : sampleWithoutReplacement(n, m, rng);
  const pts = selectRows(x, sample);
  const chosen: number[] = [rng.randint(0, m - 1)];
  const minDist = new Float64Array(m).fill(Infinity);
  for (let c = 1; c <= k; c++) {
    const last = rowOf(pts, chosen[c - 1]!);
    let total = 0;
    for (let i = 0; i < m; i++) {
      const dd = squaredDistance(rowOf(pts, i), last);
      if (dd < minDist[i]!) minDist[i] = dd;
      total += minDist[i]!;
    }
    if (c === k) break;
    let pick: number;
    if (total <= 0) {
      pick = rng.randint(0, m - 1); // all remaining points coincide with chosen centres
    } else {
      let r = rng.random() * total;
      pick = m - 1;
      for (let i = 0; i < m; i++) {
        r -= minDist[i]!;
        if (r < 0) {
          pick = i;
          break;
        }
      }
    }
    chosen.push(pick);
  }
  return selectRows(pts, chosen);
}

/** m distinct indices from [0, n) (Floyd's algorithm; O(m) memory). */
export function sampleWithoutReplacement(n: number, m: number, rng: Rng): number[] {
  const picked = new Set<number>();
  const out: number[] = [];
  for (let j = n - m; j < n; j++) {
    const t = rng.randint(0, j);
    const v = picked.has(t) ? j : t;
    picked.add(v);
    out.push(v);
  }
  return out;
}

/** Gives every empty cluster one of the points farthest from their centroids; returns how many were re-seeded. */
export function reseedEmptyClusters(
  x: Matrix,
  centroids: Matrix,
  assignments: Int32Array,
  distances: Float32Array,
  sizes: Int32Array,
): number {
  const empty: number[] = [];
  for (let c = 0; c < sizes.length; c++) if (sizes[c] === 0) empty.push(c);
  if (empty.length === 0) return 0;
  const order = Array.from({ length: x.rows }, (_, i) => i).sort((a, b) => distances[b]! - distances[a]! || a - b);
  let at = 0;
  for (const c of empty) {
    // Take the farthest point whose cluster keeps at least one other member.
    while (at < order.length && sizes[assignments[order[at]!]!]! <= 1) at++;
    if (at >= order.length) break;
    const p = order[at++]!;
    sizes[assignments[p]!]!--;
    assignments[p] = c;
    sizes[c] = 1;
    distances[p] = 0;
    centroids.data.set(rowOf(x, p), c * x.cols);
  }
  return empty.length;
}

function updateCentroids(x: Matrix, assignments: Int32Array, k: number, previous: Matrix): { centroids: Matrix; sizes: Int32Array } {
  const d = x.cols;
  const sums = new Float64Array(k * d);
  const sizes = new Int32Array(k);
  for (let i = 0; i < x.rows; i++) {
    const c = assignments[i]!;
    sizes[c]!++;
    const r = rowOf(x, i);
    const o = c * d;
    for (let j = 0; j < d; j++) sums[o + j]! += r[j]!;
  }
  const centroids = makeMatrix(k, d);
  for (let c = 0; c < k; c++) {
    if (sizes[c] === 0) {
      centroids.data.set(rowOf(previous, c), c * d); // re-seeded after the next assignment
      continue;
    }
    for (let j = 0; j < d; j++) centroids.data[c * d + j] = sums[c * d + j]! / sizes[c]!;
  }
  return { centroids, sizes };
}

function sizesOf(assignments: Int32Array, k: number): Int32Array {
  const sizes = new Int32Array(k);
  for (const a of assignments) sizes[a]!++;
  return sizes;
}

/** Lloyd's k-means; deterministic for a given seed and backend. */
export async function kmeans(x: Matrix, opts: KMeansOptions): Promise<KMeansResult> {
  const { k } = opts;
  if (!Number.isInteger(k) || k < 1) throw new Error(`k-means: k must be a positive integer, got ${k}`);
  if (k > x.rows) throw new Error(`k-means: k=${k} is larger than the number of points (${x.rows}); lower k`);
  const iters = opts.iters ?? 20;
  const tol = opts.tol ?? 1e-5;
  const rng = new Rng(opts.seed ?? 0);
  let centroids = opts.init ?? kmeansPlusPlus(x, k, rng, opts.initSampleSize);
  if (centroids.rows !== k || centroids.cols !== x.cols) {
    throw new Error(`k-means: init centroids are [${centroids.rows}, ${centroids.cols}], expected [${k}, ${x.cols}]`);
  }
  centroids = makeMatrix(k, x.cols, new Float32Array(centroids.data));
  let { assignments, distances } = await assignToCentroids(x, centroids, opts.block);
  let sizes = sizesOf(assignments, k);
  let reseeded = reseedEmptyClusters(x, centroids, assignments, distances, sizes);
  let inertia = distances.reduce((s, v) => s + v, 0);
  let iterations = 0;
  for (let it = 1; it <= iters; it++) {
    iterations = it;
    ({ centroids } = updateCentroids(x, assignments, k, centroids));
    ({ assignments, distances } = await assignToCentroids(x, centroids, opts.block));
    sizes = sizesOf(assignments, k);
    reseeded += reseedEmptyClusters(x, centroids, assignments, distances, sizes);
    const next = distances.reduce((s, v) => s + v, 0);
    opts.onIter?.(it, next);
    const converged = Math.abs(inertia - next) <= tol * Math.max(inertia, 1e-12);
    inertia = next;
    if (converged) break;
  }
  // Centroids as the means of the final assignment (re-seeded clusters hold their single point).
  ({ centroids } = updateCentroids(x, assignments, k, centroids));
  return { centroids, assignments, distances, sizes, inertia, iterations, reseeded };
}
