// PCA of feature sets: covariance by a TF.js matmul, leading eigenvectors by subspace iteration with a Rayleigh-Ritz
// step (exact to ~1e-10 for the few components we need, at any feature width), plus the small symmetric eigensolver.
// Used by the patch-feature PCA pictures (the DINOv2 README figure; community recipe in dinov2 issues #23/#412).
import { tf } from '../backend/tf.js';
import { Rng } from '../util/rng.js';
import type { Matrix } from '../util/matrix.js';

export interface Pca {
  dim: number;
  mean: Float64Array;
  /** Unit principal directions, largest variance first (each of length dim). */
  components: Float64Array[];
  /** Variance along each component (eigenvalues of the covariance, divisor N - 1). */
  variances: number[];
  /** Total variance (trace of the covariance). */
  totalVariance: number;
}

/** Eigen-decomposition of a small symmetric matrix (row-major n×n) by cyclic Jacobi rotations, eigenvalues descending. */
export function symmetricEigen(a: Float64Array, n: number): { values: number[]; vectors: Float64Array[] } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q]! - A[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y]! - A[x * n + x]!);
  return {
    values: order.map((i) => A[i * n + i]!),
    vectors: order.map((i) => Float64Array.from({ length: n }, (_, k) => V[k * n + i]!)),
  };
}

/** Principal components of the rows of `x` (N×D). */
export function fitPca(x: Matrix, numComponents: number, opts: { maxIterations?: number; seed?: number } = {}): Pca {
  const { rows: N, cols: D } = x;
  if (N < 2) throw new Error(`PCA needs at least 2 rows, got ${N}`);
  const m = Math.min(numComponents, D);
  const mean = new Float64Array(D);
  for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) mean[d]! += x.data[i * D + d]! / N;
  // Covariance D×D (float32 matmul on centred data; accurate enough for directions and ordering).
  const cov = tf.tidy(() => {
    const xc = tf.sub(tf.tensor2d(x.data, [N, D]), tf.tensor1d(Float32Array.from(mean)));
    return tf.div(tf.matMul(xc, xc, true, false), N - 1);
  });
  const C = Float64Array.from(cov.dataSync());
  cov.dispose();
  let total = 0;
  for (let d = 0; d < D; d++) total += C[d * D + d]!;

  let vectors: Float64Array[];
  let values: number[];
  if (D <= 64) {
    ({ values, vectors } = symmetricEigen(C, D));
  } else {
    ({ values, vectors } = subspaceIteration(C, D, Math.min(D, m + 8), opts.maxIterations ?? 1000, opts.seed ?? 0));
  }
  const components = vectors.slice(0, m).map(flipSign);
  return { dim: D, mean, components, variances: values.slice(0, m), totalVariance: total };
}

// Sign convention (as sklearn's svd_flip): the largest-magnitude coordinate of each component is positive.
function flipSign(v: Float64Array): Float64Array {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]!) > Math.abs(v[best]!)) best = i;
  return v[best]! < 0 ? v.map((a) => -a) : v;
}

/** Leading eigenpairs of a symmetric positive semi-definite D×D matrix: block power iteration + Rayleigh-Ritz. */
function subspaceIteration(C: Float64Array, D: number, m: number, maxIter: number, seed: number): { values: number[]; vectors: Float64Array[] } {
  const rng = new Rng([seed, 0x9ca]);
  let Q: Float64Array[] = Array.from({ length: m }, () => Float64Array.from({ length: D }, () => rng.normal()));
  orthonormalize(Q);
  let prev: number[] = [];
  let ritz = { values: [] as number[], vectors: [] as Float64Array[] };
  for (let it = 0; it < maxIter; it++) {
    const Z = Q.map((q) => symMatVec(C, D, q));
    // Rayleigh-Ritz on span(Q): H = Qᵀ C Q, rotate Q by H's eigenvectors.
    const H = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) H[i * m + j] = dot(Q[i]!, Z[j]!);
    ritz = symmetricEigen(H, m);
    const rotatedZ = ritz.vectors.map((w) => combine(Z, w));
    const converged = prev.length === m && ritz.values.every((v, i) => Math.abs(v - prev[i]!) <= 1e-12 * Math.max(1e-30, Math.abs(ritz.values[0]!)));
    if (converged) {
      return { values: ritz.values, vectors: ritz.vectors.map((w) => normalizeVec(combine(Q, w))) };
    }
    prev = ritz.values;
    Q = rotatedZ;
    orthonormalize(Q);
  }
  return { values: ritz.values, vectors: Q.map((q) => normalizeVec(q)) };
}

function symMatVec(C: Float64Array, D: number, v: Float64Array): Float64Array {
  const out = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    let s = 0;
    const o = i * D;
    for (let j = 0; j < D; j++) s += C[o + j]! * v[j]!;
    out[i] = s;
  }
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function combine(vs: Float64Array[], w: Float64Array): Float64Array {
  const out = new Float64Array(vs[0]!.length);
  vs.forEach((v, k) => {
    for (let i = 0; i < out.length; i++) out[i]! += w[k]! * v[i]!;
  });
  return out;
}

function normalizeVec(v: Float64Array): Float64Array {
  const n = Math.sqrt(dot(v, v)) || 1;
  return v.map((a) => a / n);
}

/** Modified Gram-Schmidt, twice for stability. */
function orthonormalize(Q: Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < Q.length; i++) {
      for (let j = 0; j < i; j++) {
        const d = dot(Q[i]!, Q[j]!);
        for (let k = 0; k < Q[i]!.length; k++) Q[i]![k]! -= d * Q[j]![k]!;
      }
      Q[i] = normalizeVec(Q[i]!);
    }
  }
}

/** Coordinates of every row of `x` along the components (N × numComponents, row-major). */
export function projectPca(x: Matrix, p: Pca, numComponents = p.components.length): Float32Array {
  const m = Math.min(numComponents, p.components.length);
  const out = new Float32Array(x.rows * m);
  for (let i = 0; i < x.rows; i++) {
    for (let c = 0; c < m; c++) {
      const comp = p.components[c]!;
      let s = 0;
      for (let d = 0; d < x.cols; d++) s += (x.data[i * x.cols + d]! - p.mean[d]!) * comp[d]!;
      out[i * m + c] = s;
    }
  }
  return out;
}

export interface PatchPcaOptions {
  /** Foreground threshold on the first component after min-max scaling to [0, 1] over all images (default 0.5). */
  threshold?: number;
  /**
   * true (default): fit a second PCA on the foreground patches only and colour them by its first three components
   * (the DINOv2 README recipe); false: colour by components 2-4 of the first PCA.
   */
  refit?: boolean;
  /** Skip the foreground step and colour every patch (default false). */
  noForeground?: boolean;
}

export interface PatchPcaImage {
  gridH: number;
  gridW: number;
  /** First-component score per patch, min-max scaled to [0, 1] over all images, oriented so the foreground is high. */
  firstComponent: Float32Array;
  /** 1 = foreground patch. */
  foreground: Uint8Array;
  /** RGB in [0, 1] per patch (gridH*gridW*3); background patches are 0. */
  rgb: Float32Array;
}

/**
 * Joint PCA of the patch features of several images (each a gridH*gridW × D matrix): the first component, min-max
 * scaled over all patches, is thresholded for the foreground; three further components, min-max scaled per component
 * over the foreground, become RGB. The first component's sign is arbitrary, so it is oriented to make the border
 * patches (mostly background in object-centred photos) score lower than the interior ones.
 */
export function patchPca(feats: Matrix[], grids: [number, number][], opts: PatchPcaOptions = {}): PatchPcaImage[] {
  if (feats.length === 0) throw new Error('patchPca: no images');
  feats.forEach((f, i) => {
    if (f.rows !== grids[i]![0] * grids[i]![1]) throw new Error(`patchPca: image ${i} has ${f.rows} patches for a ${grids[i]!.join('x')} grid`);
  });
  const all = stackRows(feats);
  const threshold = opts.threshold ?? 0.5;
  const first = fitPca(all, 4);
  const stride = first.components.length; // 4, or fewer for very narrow features
  const proj = projectPca(all, first, stride);
  const n = all.rows;
  // orient and scale the first component
  let pc1: Float32Array = Float32Array.from({ length: n }, (_, i) => proj[i * stride]!);
  let border = 0;
  let nBorder = 0;
  let inner = 0;
  let nInner = 0;
  let offset = 0;
  for (const [gh, gw] of grids) {
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        const v = pc1[offset + y * gw + x]!;
        if (y === 0 || x === 0 || y === gh - 1 || x === gw - 1) {
          border += v;
          nBorder++;
        } else {
          inner += v;
          nInner++;
        }
      }
    }
    offset += gh * gw;
  }
  if (nBorder > 0 && nInner > 0 && border / nBorder > inner / nInner) pc1 = pc1.map((v) => -v);
  pc1 = minMaxScale(pc1);
  const fg = Uint8Array.from(pc1, (v) => (opts.noForeground || v > threshold ? 1 : 0));
  const fgIdx: number[] = [];
  fg.forEach((v, i) => v && fgIdx.push(i));

  // three colour channels for the foreground patches
  const rgbFg = new Float32Array(fgIdx.length * 3);
  if (fgIdx.length >= 2) {
    if (opts.refit ?? true) {
      const fgFeats: Matrix = { data: new Float32Array(fgIdx.length * all.cols), rows: fgIdx.length, cols: all.cols };
      fgIdx.forEach((r, j) => fgFeats.data.set(all.data.subarray(r * all.cols, (r + 1) * all.cols), j * all.cols));
      const second = fitPca(fgFeats, 3);
      const p = projectPca(fgFeats, second, 3);
      const m = second.components.length;
      for (let j = 0; j < fgIdx.length; j++) for (let c = 0; c < m; c++) rgbFg[j * 3 + c] = p[j * m + c]!;
    } else {
      fgIdx.forEach((r, j) => {
        for (let c = 0; c < 3; c++) rgbFg[j * 3 + c] = 1 + c < stride ? proj[r * stride + 1 + c]! : 0;
      });
    }
    for (let c = 0; c < 3; c++) {
      const ch = minMaxScale(Float32Array.from({ length: fgIdx.length }, (_, j) => rgbFg[j * 3 + c]!));
      ch.forEach((v, j) => (rgbFg[j * 3 + c] = v));
    }
  }
  const rgbAll = new Float32Array(n * 3);
  fgIdx.forEach((r, j) => rgbAll.set(rgbFg.subarray(j * 3, j * 3 + 3), r * 3));

  const out: PatchPcaImage[] = [];
  offset = 0;
  for (const [gh, gw] of grids) {
    const k = gh * gw;
    out.push({
      gridH: gh,
      gridW: gw,
      firstComponent: pc1.slice(offset, offset + k),
      foreground: fg.slice(offset, offset + k),
      rgb: rgbAll.slice(offset * 3, (offset + k) * 3),
    });
    offset += k;
  }
  return out;
}

function stackRows(ms: Matrix[]): Matrix {
  const cols = ms[0]!.cols;
  const rows = ms.reduce((s, m) => s + m.rows, 0);
  const data = new Float32Array(rows * cols);
  let o = 0;
  for (const m of ms) {
    if (m.cols !== cols) throw new Error(`patchPca: feature widths differ (${m.cols} vs ${cols})`);
    data.set(m.data, o);
    o += m.data.length;
  }
  return { data, rows, cols };
}

function minMaxScale(v: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const s = hi > lo ? 1 / (hi - lo) : 0;
  return v.map((x) => (x - lo) * s);
}
