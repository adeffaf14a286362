// Exact top-k by inner product (cosine once rows are L2-normalised), in bounded memory: the one k-NN search of the
// project (k-NN eval, retrieval, curation dedup).
// Keys are cut into blocks, each transposed once (the wasm backend multiplies a plain [D, N] right-hand side about
// 10x faster than a transposeB product); every query block is scored against the current key block and the scores
// are scanned on the host into one min-heap of the best k per query. The scan is one comparison per score against
// the heap's root (the k-th best so far); an insertion, O(log k), is rare.
// Peak memory beyond the inputs: queryBlock x keyBlock scores on the device and the host, plus queries x k results.
//
// Ties: among equal scores the lower key index ranks first. That is what a stable descending sort gives, and what
// torch.topk returns for small inputs; for large ones torch.topk's order among exactly equal scores is unspecified
// (it depends on its selection algorithm), so no exact rule can match it everywhere. With this rule the top-k of a
// smaller k is always a prefix of the top-k of a larger k.
import { tf } from '../backend/tf.js';
import { type Matrix, makeMatrix, rowOf, dot } from '../util/matrix.js';

export type { Matrix } from '../util/matrix.js';

/** Kept for src/train/knn_monitor.ts; new code uses makeMatrix(rows, cols, data) from util/matrix.ts. */
export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  return makeMatrix(rows, cols, data);
}

export interface TopK {
  /** Neighbours per query: the k asked, clipped to the number of keys (minus one with excludeSelf). */
  k: number;
  rows: number;
  /** [rows * k] key indices, best first; -1 where a slot is empty (NaN or -Infinity scores, or an ANN search that found fewer). */
  indices: Int32Array;
  /** [rows * k] scores (inner products; cosine for unit rows), descending; -Infinity where a slot is empty. */
  scores: Float32Array;
}

export interface TopKOptions {
  /** Queries and keys are the same rows: never return a row as its own neighbour (leave-one-out). */
  excludeSelf?: boolean;
  /** Queries per matmul block (default 1024). */
  queryBlock?: number;
  /** Keys per matmul block (default 16384). */
  keyBlock?: number;
  /** Called after each key block with (keys done, total keys). */
  onProgress?: (done: number, total: number) => void;
}

function checkArgs(queries: Matrix, keys: Matrix, k: number, excludeSelf: boolean): number {
  if (queries.cols !== keys.cols) {
    throw new Error(`top-k: queries have ${queries.cols} dims but keys have ${keys.cols}; embed both with the same model`);
  }
  if (!Number.isInteger(k) || k < 1) throw new Error(`top-k: k must be a positive integer, got ${k}`);
  if (excludeSelf && queries.rows !== keys.rows) {
    throw new Error(`top-k: excludeSelf needs the queries to be the keys themselves, got ${queries.rows} queries and ${keys.rows} keys`);
  }
  return Math.min(k, Math.max(0, keys.rows - (excludeSelf ? 1 : 0)));
}

function emptyResult(rows: number, k: number): TopK {
  return { k, rows, indices: new Int32Array(rows * k).fill(-1), scores: new Float32Array(rows * k).fill(-Infinity) };
}

/** For every query row, the k key rows with the largest inner product (see file comment). */
export function topkInnerProduct(queries: Matrix, keys: Matrix, k: number, opts: TopKOptions = {}): TopK {
  const excludeSelf = opts.excludeSelf ?? false;
  k = checkArgs(queries, keys, k, excludeSelf);
  const nq = queries.rows;
  const d = queries.cols;
  const qb = opts.queryBlock ?? 1024;
  const kb = opts.keyBlock ?? 16384;
  const res = emptyResult(nq, k);
  if (k === 0 || nq === 0) return res;
  // Each query's slots hold a min-heap while scanning; empty slots (-Infinity, -1) are its worst entries.
  const { scores, indices } = res;

  for (let k0 = 0; k0 < keys.rows; k0 += kb) {
    const k1 = Math.min(keys.rows, k0 + kb);
    const width = k1 - k0;
    const keysT = tf.tidy(() => tf.transpose(tf.tensor2d(keys.data.subarray(k0 * d, k1 * d), [width, d])));
    try {
      for (let q0 = 0; q0 < nq; q0 += qb) {
        const q1 = Math.min(nq, q0 + qb);
        const simT = tf.tidy(() => tf.matMul(tf.tensor2d(queries.data.subarray(q0 * d, q1 * d), [q1 - q0, d]), keysT));
        const sims = simT.dataSync() as Float32Array;
        simT.dispose();
        for (let r = 0; r < q1 - q0; r++) {
          const h = (q0 + r) * k;
          const self = excludeSelf ? q0 + r - k0 : -1;
          const off = r * width;
          let root = scores[h]!;
          for (let j = 0; j < width; j++) {
            const v = sims[off + j]!;
            // Keys arrive in increasing index order, so a newcomer equal to the root is never better.
            if (!(v > root) || j === self) continue;
            scores[h] = v;
            indices[h] = k0 + j;
            siftDown(scores, indices, h, k);
            root = scores[h]!;
          }
        }
      }
    } finally {
      keysT.dispose();
    }
    opts.onProgress?.(k1, keys.rows);
  }
  // Heap order -> best first, in place: repeatedly swap the root (worst left) to the end of the shrinking heap.
  for (let q = 0; q < nq; q++) {
    const h = q * k;
    for (let n = k - 1; n > 0; n--) {
      const s = scores[h]!;
      const i = indices[h]!;
      scores[h] = scores[h + n]!;
      indices[h] = indices[h + n]!;
      scores[h + n] = s;
      indices[h + n] = i;
      siftDown(scores, indices, h, n);
    }
  }
  return res;
}

/** Restores the min-heap of `len` entries at offset h after its root changed (worst = lowest score, then highest index). */
function siftDown(hs: Float32Array, hi: Int32Array, h: number, len: number): void {
  const v = hs[h]!;
  const vi = hi[h]!;
  let c = 0;
  for (;;) {
    const l = 2 * c + 1;
    if (l >= len) break;
    const r = l + 1;
    const w = r < len && worse(hs[h + r]!, hi[h + r]!, hs[h + l]!, hi[h + l]!) ? r : l;
    if (!worse(hs[h + w]!, hi[h + w]!, v, vi)) break;
    hs[h + c] = hs[h + w]!;
    hi[h + c] = hi[h + w]!;
    c = w;
  }
  hs[h + c] = v;
  hi[h + c] = vi;
}

/**
 * Is (sa, ia) ranked below (sb, ib)? Lower score is worse; among equal scores the higher index is worse. Empty slots
 * (-Infinity, -1) only ever tie with each other, and their order does not matter.
 */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

/** Reference: plain loops over every pair (for tests and tiny inputs), the same contract as topkInnerProduct. */
export function bruteForceTopK(queries: Matrix, keys: Matrix, k: number, opts: { excludeSelf?: boolean } = {}): TopK {
  const excludeSelf = opts.excludeSelf ?? false;
  const res = emptyResult(queries.rows, checkArgs(queries, keys, k, excludeSelf));
  for (let i = 0; i < queries.rows; i++) {
    const q = rowOf(queries, i);
    const all: [number, number][] = [];
    for (let j = 0; j < keys.rows; j++) {
      const s = dot(q, rowOf(keys, j));
      if (!(excludeSelf && i === j) && s > -Infinity) all.push([s, j]);
    }
    all.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    for (let m = 0; m < Math.min(res.k, all.length); m++) {
      res.scores[i * res.k + m] = all[m]![0];
      res.indices[i * res.k + m] = all[m]![1];
    }
  }
  return res;
}
