// Exact top-k by inner product (cosine once rows are L2-normalised): the similarity matrix is computed block by block
// with a TF.js matmul and scanned on the host with one small heap per query, so memory stays at one block.
//
// Ties: among equal scores the lower bank index ranks first. That is what a stable descending sort gives, and what
// torch.topk returns for small inputs; for large ones torch.topk's order among exactly equal scores is unspecified
// (it depends on its selection algorithm), so no exact rule can match it everywhere. With this rule the top-k of a
// smaller k is always a prefix of the top-k of a larger k.
import { tf } from '../backend/tf.js';

/** A row-major float32 matrix on the host. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  if (data.length !== rows * cols) throw new Error(`matrix: ${data.length} values do not make ${rows}x${cols}`);
  return { data, rows, cols };
}

/** Accepts a host matrix or a rank-2 tensor (read back synchronously). */
export function toMatrix(x: Matrix | tf.Tensor, what = 'features'): Matrix {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what}: expected a rank-2 tensor [N, D], got shape [${x.shape.join(', ')}]`);
    return matrix(x.dataSync() as Float32Array, x.shape[0]!, x.shape[1]!);
  }
  return x;
}

/** Row-wise L2 normalisation (F.normalize semantics: divide by max(norm, 1e-12)); returns a new matrix. */
export function l2NormalizeRows(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    const o = r * m.cols;
    let s = 0;
    for (let c = 0; c < m.cols; c++) s += m.data[o + c]! * m.data[o + c]!;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < m.cols; c++) out[o + c] = m.data[o + c]! * inv;
  }
  return { data: out, rows: m.rows, cols: m.cols };
}

export interface TopK {
  k: number;
  rows: number;
  /** [rows * k] bank indices, best first */
  indices: Int32Array;
  /** [rows * k] scores, descending */
  scores: Float32Array;
}

export interface TopKOptions {
  /** Queries per matmul block (default 256). */
  queryBlock?: number;
  /** Bank rows per matmul block (default 16384). */
  bankBlock?: number;
  /** Called after each query block with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * For every query row, the k bank rows with the largest inner product. Bank indices are global row numbers.
 * If the bank has fewer than k rows, k is reduced to the bank size.
 */
export function topkInnerProduct(queries: Matrix, bank: Matrix, k: number, opts: TopKOptions = {}): TopK {
  if (queries.cols !== bank.cols) throw new Error(`top-k: query dim ${queries.cols} differs from bank dim ${bank.cols}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`top-k: k must be a positive integer, got ${k}`);
  k = Math.min(k, bank.rows);
  const qb = opts.queryBlock ?? 256;
  const bb = opts.bankBlock ?? 16384;
  const heapScore = new Float32Array(queries.rows * k);
  const heapIndex = new Int32Array(queries.rows * k);
  const heapSize = new Int32Array(queries.rows);

  // The bank is uploaded once, in chunks, and reused for every query block.
  const bankChunks: { start: number; t: tf.Tensor2D }[] = [];
  for (let s = 0; s < bank.rows; s += bb) {
    const n = Math.min(bb, bank.rows - s);
    bankChunks.push({ start: s, t: tf.tensor2d(bank.data.subarray(s * bank.cols, (s + n) * bank.cols), [n, bank.cols]) });
  }
  try {
    for (let q0 = 0; q0 < queries.rows; q0 += qb) {
      const nq = Math.min(qb, queries.rows - q0);
      const qt = tf.tensor2d(queries.data.subarray(q0 * queries.cols, (q0 + nq) * queries.cols), [nq, queries.cols]);
      for (const { start, t } of bankChunks) {
        const simT = tf.matMul(qt, t, false, true);
        const sims = simT.dataSync() as Float32Array;
        simT.dispose();
        const nb = t.shape[0];
        for (let i = 0; i < nq; i++) scanRow(sims, i * nb, nb, start, (q0 + i) * k, k, q0 + i, heapScore, heapIndex, heapSize);
      }
      qt.dispose();
      opts.onProgress?.(q0 + nq, queries.rows);
    }
  } finally {
    for (const c of bankChunks) c.t.dispose();
  }
  // Heap order → best first.
  const order = new Array<number>(k);
  const s2 = new Float32Array(k);
  const i2 = new Int32Array(k);
  for (let r = 0; r < queries.rows; r++) {
    const o = r * k;
    for (let j = 0; j < k; j++) order[j] = j;
    order.sort((a, b) => heapScore[o + b]! - heapScore[o + a]! || heapIndex[o + a]! - heapIndex[o + b]!);
    for (let j = 0; j < k; j++) {
      s2[j] = heapScore[o + order[j]!]!;
      i2[j] = heapIndex[o + order[j]!]!;
    }
    heapScore.set(s2, o);
    heapIndex.set(i2, o);
  }
  return { k, rows: queries.rows, indices: heapIndex, scores: heapScore };
}

// Min-heap of the k best so far; the root is the worst kept (lowest score, and among equal scores the highest index).
// Bank indices arrive in increasing order, so a newcomer equal to the root is never better and is skipped.
function scanRow(
  sims: Float32Array,
  off: number,
  n: number,
  start: number,
  h: number,
  k: number,
  row: number,
  hs: Float32Array,
  hi: Int32Array,
  size: Int32Array,
): void {
  let len = size[row]!;
  let j = 0;
  for (; j < n && len < k; j++) {
    // fill phase: sift up
    const v = sims[off + j]!;
    let c = len++;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!worse(v, start + j, hs[h + p]!, hi[h + p]!)) break;
      hs[h + c] = hs[h + p]!;
      hi[h + c] = hi[h + p]!;
      c = p;
    }
    hs[h + c] = v;
    hi[h + c] = start + j;
  }
  size[row] = len;
  let root = hs[h]!;
  for (; j < n; j++) {
    const v = sims[off + j]!;
    if (!(v > root)) continue;
    // replace the root, sift down
    let c = 0;
    for (;;) {
      const l = 2 * c + 1;
      if (l >= k) break;
      const r = l + 1;
      const w = r < k && worse(hs[h + r]!, hi[h + r]!, hs[h + l]!, hi[h + l]!) ? r : l;
      if (!worse(hs[h + w]!, hi[h + w]!, v, start + j)) break;
      hs[h + c] = hs[h + w]!;
      hi[h + c] = hi[h + w]!;
      c = w;
    }
    hs[h + c] = v;
    hi[h + c] = start + j;
    root = hs[h]!;
  }
}

/** Is (sa, ia) ranked below (sb, ib)? Lower score is worse; among equal scores the higher index is worse. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}
