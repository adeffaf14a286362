// Row-major float32 matrices on the host: feature banks (eval), embedding tables (curation), k-NN inputs (train).
// Kept as plain typed arrays (not tensors) so 1M x 384 tables stay in one buffer and cross into TF.js in blocks.
import { tf } from '../backend/tf.js';

export interface Matrix {
  /** rows * cols values, row-major. */
  data: Float32Array;
  rows: number;
  cols: number;
}

/** A matrix over `data` (no copy), or a zero-filled one when `data` is omitted. */
export function makeMatrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) {
    throw new Error(`matrix shape [${rows}, ${cols}] is invalid: rows must be >= 0 and cols >= 1`);
  }
  if (data && data.length !== rows * cols) {
    throw new Error(`matrix data has ${data.length} values, expected ${rows} x ${cols} = ${rows * cols}`);
  }
  return { data: data ?? new Float32Array(rows * cols), rows, cols };
}

/** Accepts a host matrix or a rank-2 tensor (read back synchronously). */
export function toMatrix(x: Matrix | tf.Tensor, what = 'features'): Matrix {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what}: expected a rank-2 tensor [N, D], got shape [${x.shape.join(', ')}]`);
    return makeMatrix(x.shape[0]!, x.shape[1]!, x.dataSync() as Float32Array);
  }
  return x;
}

/** A view of row i (no copy). */
export function rowOf(m: Matrix, i: number): Float32Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** A view of rows [start, end) as a matrix (no copy). */
export function sliceRows(m: Matrix, start: number, end: number): Matrix {
  return makeMatrix(end - start, m.cols, m.data.subarray(start * m.cols, end * m.cols));
}

/** A copy holding the given rows in the given order. */
export function selectRows(m: Matrix, rows: ArrayLike<number>): Matrix {
  const out = makeMatrix(rows.length, m.cols);
  for (let r = 0; r < rows.length; r++) out.data.set(rowOf(m, rows[r]!), r * m.cols);
  return out;
}

/** Stacks matrices with the same number of columns. */
export function concatRows(parts: Matrix[]): Matrix {
  if (parts.length === 0) throw new Error('concatRows needs at least one matrix');
  const cols = parts[0]!.cols;
  const out = makeMatrix(
    parts.reduce((s, p) => s + p.rows, 0),
    cols,
  );
  let at = 0;
  for (const p of parts) {
    if (p.cols !== cols) throw new Error(`concatRows: column counts differ (${cols} vs ${p.cols})`);
    out.data.set(p.data.subarray(0, p.rows * cols), at);
    at += p.rows * cols;
  }
  return out;
}

/** Row-wise L2 normalisation (F.normalize semantics: divide by max(norm, 1e-12), so zero rows stay zero); a copy. */
export function l2NormalizeRows(m: Matrix): Matrix {
  const out = makeMatrix(m.rows, m.cols);
  for (let i = 0; i < m.rows; i++) {
    const src = rowOf(m, i);
    const dst = rowOf(out, i);
    const inv = 1 / Math.max(Math.sqrt(dot(src, src)), 1e-12);
    for (let j = 0; j < src.length; j++) dst[j] = src[j]! * inv;
  }
  return out;
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) {
    const d = a[j]! - b[j]!;
    s += d * d;
  }
  return s;
}

/** Squared L2 norm of every row. */
export function rowSquaredNorms(m: Matrix): Float32Array {
  const out = new Float32Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    const r = rowOf(m, i);
    out[i] = dot(r, r);
  }
  return out;
}
