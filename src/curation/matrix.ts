// Row-major float32 matrices on the host: the embedding tables of the curation pipeline.
// Kept as plain typed arrays (not tensors) so 1M x 384 tables stay in one buffer and cross into TF.js in blocks.

export interface Matrix {
  /** rows * cols values, row-major. */
  data: Float32Array;
  rows: number;
  cols: number;
}

export function makeMatrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 1) {
    throw new Error(`matrix shape [${rows}, ${cols}] is invalid: rows must be >= 0 and cols >= 1`);
  }
  if (data && data.length !== rows * cols) {
    throw new Error(`matrix data has ${data.length} values, expected ${rows} x ${cols} = ${rows * cols}`);
  }
  return { data: data ?? new Float32Array(rows * cols), rows, cols };
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

/** A copy with every row scaled to unit L2 norm (zero rows stay zero). */
export function l2NormalizeRows(m: Matrix): Matrix {
  const out = makeMatrix(m.rows, m.cols, new Float32Array(m.data));
  for (let i = 0; i < m.rows; i++) {
    const r = rowOf(out, i);
    let s = 0;
    for (let j = 0; j < r.length; j++) s += r[j]! * r[j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < r.length; j++) r[j]! *= inv;
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
