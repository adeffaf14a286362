// Exact cosine k-nearest neighbours by blocked matrix products, in bounded memory.
// Keys are cut into blocks (transposed once per block: the wasm backend multiplies a plain [D, N] right-hand side
// about 10x faster than a transposeB product); every query block is scored against the current key block,
// tf.topk keeps the block's best k, and a per-query sorted list merges the blocks as they stream by.
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
  const result: Neighbours = {
    k,
    indices: new Int32Array(nq * k).fill(-1),
    scores: new Float32Array(nq * k).fill(-Infinity),
  };
  if (k === 0 || nq === 0) return result;
  const mergedScores = new Float32Array(k);
  const mergedIdx = new Int32Array(k);

  for (let k0 = 0; k0 < keys.rows; k0 += kb) {
    const k1 = Math.min(keys.rows, k0 + kb);
    const keysT = tf.tidy(() =>
      tf.transpose(tf.tensor2d(keys.data.subarray(k0 * d, k1 * d), [k1 - k0, d])),
    ) as tf.Tensor2D;
    // One extra candidate per block so a dropped self-match still leaves k.
    const take = Math.min(k1 - k0, k + (excludeSelf ? 1 : 0));
    for (let q0 = 0; q0 < nq; q0 += qb) {
      const q1 = Math.min(nq, q0 + qb);
      const { values, indices } = tf.tidy(() => {
        const q = tf.tensor2d(queries.data.subarray(q0 * d, q1 * d), [q1 - q0, d]);
        return tf.topk(tf.matMul(q, keysT), take, true);
      });
      const vals = (await values.data()) as Float32Array;
      const idxs = (await indices.data()) as Int32Array;
      values.dispose();
      indices.dispose();
      for (let r = 0; r < q1 - q0; r++) {
        const qi = q0 + r;
        mergeRow(result, qi, k, vals, idxs, r * take, take, k0, excludeSelf ? qi : -1, mergedScores, mergedIdx);
      }
    }
    keysT.dispose();
    opts.onProgress?.(k1 / keys.rows);
  }
  return result;
}

/** Merges one block's sorted candidates into query qi's sorted list. */
function mergeRow(
  res: Neighbours,
  qi: number,
  k: number,
  vals: Float32Array,
  idxs: Int32Array,
  off: number,
  take: number,
  keyOffset: number,
  self: number,
  mergedScores: Float32Array,
  mergedIdx: Int32Array,
): void {
  const base = qi * k;
  // Fast exit: the block's best cannot enter the list.
  if (vals[off]! <= res.scores[base + k - 1]! && res.indices[base + k - 1]! !== -1) return;
  let a = 0;
  let b = 0;
  for (let m = 0; m < k; m++) {
    while (b < take && idxs[off + b]! + keyOffset === self) b++;
    const aScore = a < k ? res.scores[base + a]! : -Infinity;
    const bScore = b < take ? vals[off + b]! : -Infinity;
    if (a < k && (aScore >= bScore || b >= take) && res.indices[base + a]! !== -1) {
      mergedScores[m] = aScore;
      mergedIdx[m] = res.indices[base + a]!;
      a++;
    } else if (b < take) {
      mergedScores[m] = bScore;
      mergedIdx[m] = idxs[off + b]! + keyOffset;
      b++;
    } else {
      mergedScores[m] = -Infinity;
      mergedIdx[m] = -1;
    }
  }
  res.scores.set(mergedScores, base);
  res.indices.set(mergedIdx, base);
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
