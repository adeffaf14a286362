// Exact cosine k-nearest neighbours by blocked matrix products, in bounded memory.
// Keys are cut into blocks (transposed once per block: the wasm backend multiplies a plain [D, N] right-hand side
// about 10x faster than a transposeB product); every query block is scored against the current key block and the
// scores are scanned on the host into a per-query sorted list of the best k so far. The scan is one comparison per
// score against the current k-th best (an insertion is rare), which beats tf.topk on the native backend and matches
// it on wasm. Ties keep the lower key index first, like a stable sort.
// Peak memory beyond the inputs: queryBlock x keyBlock scores plus queries x k results.
import { tf } from '../backend/tf.js';
import { type Matrix, rowOf, dot } from './matrix.js';

export interface Neighbours {
  /** Neighbours per query (may be fewer than asked when there are fewer keys). */
  k: number;
  /** queries x k key indices, best first; -1 where a slot is empty. */
  indices: Int32Array;
  /** queries x k similarities (dot products; cosine for unit rows), best first; -Infinity where empty. */
  scores: Float32Array;
}

export interface TopKOptions {
  k: number;
  /** Queries and keys are the same set: never return a row as its own neighbour. */
  excludeSelf?: boolean;
  queryBlock?: number;
  keyBlock?: number;
  /** Called after each key block with the fraction done. */
  onProgress?: (fraction: number) => void;
}

function checkShapes(queries: Matrix, keys: Matrix, k: number): void {
  if (queries.cols !== keys.cols) {
    throw new Error(`top-k: queries have ${queries.cols} dims but keys have ${keys.cols}; embed both with the same model`);
  }
  if (!Number.isInteger(k) || k < 1) throw new Error(`top-k: k must be a positive integer, got ${k}`);
}

/** Exact top-k by inner product, streaming over key blocks (see file comment). */
export async function blockedTopK(queries: Matrix, keys: Matrix, opts: TopKOptions): Promise<Neighbours> {
  checkShapes(queries, keys, opts.k);
  const excludeSelf = opts.excludeSelf ?? false;
  const k = Math.min(opts.k, Math.max(0, keys.rows - (excludeSelf ? 1 : 0)));
  const nq = queries.rows;
  const d = queries.cols;
  const qb = opts.queryBlock ?? 1024;
  const kb = opts.keyBlock ?? 16384;
  const res: Neighbours = {
    k,
    indices: new Int32Array(nq * k).fill(-1),
    scores: new Float32Array(nq * k).fill(-Infinity),
  };
  if (k === 0 || nq === 0) return res;
  const { scores, indices } = res;

  for (let k0 = 0; k0 < keys.rows; k0 += kb) {
    const k1 = Math.min(keys.rows, k0 + kb);
    const width = k1 - k0;
    const keysT = tf.tidy(() => tf.transpose(tf.tensor2d(keys.data.subarray(k0 * d, k1 * d), [width, d])));
    for (let q0 = 0; q0 < nq; q0 += qb) {
      const q1 = Math.min(nq, q0 + qb);
      const simT = tf.tidy(() => tf.matMul(tf.tensor2d(queries.data.subarray(q0 * d, q1 * d), [q1 - q0, d]), keysT));
      const sims = (await simT.data()) as Float32Array;
      simT.dispose();
      for (let r = 0; r < q1 - q0; r++) {
        const qi = q0 + r;
        const base = qi * k;
        const last = base + k - 1;
        const self = excludeSelf ? qi - k0 : -1;
        let worst = scores[last]!;
        const off = r * width;
        for (let j = 0; j < width; j++) {
          const v = sims[off + j]!;
          if (!(v > worst) || j === self) continue;
          // Insert after every entry >= v (earlier key indices win ties).
          let p = last;
          while (p > base && scores[p - 1]! < v) {
            scores[p] = scores[p - 1]!;
            indices[p] = indices[p - 1]!;
            p--;
          }
          scores[p] = v;
          indices[p] = k0 + j;
          worst = scores[last]!;
        }
      }
    }
    keysT.dispose();
    opts.onProgress?.(k1 / keys.rows);
  }
  return res;
}

/** Reference: plain loops over every pair (for tests and tiny inputs). Ties go to the lower key index. */
export function bruteForceTopK(queries: Matrix, keys: Matrix, k: number, excludeSelf = false): Neighbours {
  checkShapes(queries, keys, k);
  const kk = Math.min(k, Math.max(0, keys.rows - (excludeSelf ? 1 : 0)));
  const res: Neighbours = {
    k: kk,
    indices: new Int32Array(queries.rows * kk).fill(-1),
    scores: new Float32Array(queries.rows * kk).fill(-Infinity),
  };
  for (let i = 0; i < queries.rows; i++) {
    const q = rowOf(queries, i);
    const all: [number, number][] = [];
    for (let j = 0; j < keys.rows; j++) if (!(excludeSelf && i === j)) all.push([dot(q, rowOf(keys, j)), j]);
    all.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    for (let m = 0; m < kk; m++) {
      res.scores[i * kk + m] = all[m]![0];
      res.indices[i * kk + m] = all[m]![1];
    }
  }
  return res;
}
