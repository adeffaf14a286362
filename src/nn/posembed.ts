// Resizing the learned position-embedding grid [1, 1+M², D] to another patch grid (gh, gw), as the official code
// does with F.interpolate(mode='bicubic', align_corners=False) in one of three ways (PosEmbedInterpolation):
//  - 'scale_factor': scale_factor = ((gh+offset)/M, (gw+offset)/M), no antialias (v1; v2 without registers).
//    PyTorch then maps output pixel d to source (d+0.5)/scale − 0.5, so the offset shifts every sample slightly.
//  - 'size': size = (gh, gw), no antialias (HF Dinov2Model). Source = (d+0.5)·M/g − 0.5.
//    Both use the Keys cubic kernel with A = −0.75 and clamp out-of-range taps to the border pixel.
//  - 'size_antialias': size = (gh, gw), antialias=True (v2 with registers; HF Dinov2WithRegisters): PyTorch's
//    PIL-style filter, cubic kernel a = −0.5 whose support grows with the downscale factor, taps outside the image
//    dropped and the weights renormalised (also used, unscaled, when upsampling).
// Bicubic resizing is separable, so it is two small matrices Ry [gh, M] and Rx [gw, M] applied with matmuls:
// cheap, and differentiable with respect to pos_embed. The constants were checked against torch 1.13 (tests).
import { tf, type Tensor } from '../backend/tf.js';
import type { PosEmbedInterpolation } from '../models/config.js';

function cubicKeys(x: number, A: number): number {
  x = Math.abs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

/** Non-antialiased bicubic resize matrix [outSize, inSize]; `scale` = source pixels per output pixel. */
export function bicubicMatrix(inSize: number, outSize: number, scale: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  for (let d = 0; d < outSize; d++) {
    const src = scale * (d + 0.5) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubicKeys(t + 1, -0.75), cubicKeys(t, -0.75), cubicKeys(1 - t, -0.75), cubicKeys(2 - t, -0.75)];
    for (let k = 0; k < 4; k++) {
      const idx = Math.min(Math.max(i0 - 1 + k, 0), inSize - 1);
      m[d * inSize + idx] += w[k]!;
    }
  }
  return m;
}

/** Antialiased (PIL-style) bicubic resize matrix [outSize, inSize], as torch's _upsample_bicubic2d_aa. */
export function bicubicAntialiasMatrix(inSize: number, outSize: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  for (let d = 0; d < outSize; d++) {
    const center = scale * (d + 0.5);
    // Math.trunc mirrors the C++ int64 cast of the official kernel.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    for (let j = lo; j < hi; j++) total += cubicKeys((j - center + 0.5) * invScale, -0.5);
    for (let j = lo; j < hi; j++) {
      const w = cubicKeys((j - center + 0.5) * invScale, -0.5);
      m[d * inSize + j] = total !== 0 ? w / total : 0;
    }
  }
  return m;
}

/** The 1-D resize matrix from M source rows to `out` rows for one axis, checking the size torch would produce. */
export function axisMatrix(M: number, out: number, mode: PosEmbedInterpolation, offset: number): Float64Array {
  if (mode === 'size_antialias') return bicubicAntialiasMatrix(M, out);
  if (mode === 'size') return bicubicMatrix(M, out, M / out);
  const scaleFactor = (out + offset) / M;
  const produced = Math.floor(M * scaleFactor);
  if (produced !== out) {
    throw new Error(`pos-embed interpolation: scale_factor ${scaleFactor} maps ${M} to ${produced} rows, not ${out}; use an interpolateOffset in (0, 1)`);
  }
  return bicubicMatrix(M, out, 1 / scaleFactor);
}

const cache = new Map<string, { ry: Float32Array; rx: Float32Array }>();

function matrices(M: number, gh: number, gw: number, mode: PosEmbedInterpolation, offset: number) {
  const key = `${M}/${gh}/${gw}/${mode}/${offset}`;
  let hit = cache.get(key);
  if (!hit) {
    hit = { ry: Float32Array.from(axisMatrix(M, gh, mode, offset)), rx: Float32Array.from(axisMatrix(M, gw, mode, offset)) };
    if (cache.size > 256) cache.clear();
    cache.set(key, hit);
  }
  return hit;
}

/** Resizes a patch grid [M·M, D] (row-major) to [gh·gw, D]. */
export function resizePatchGrid(grid: Tensor, M: number, gh: number, gw: number, mode: PosEmbedInterpolation, offset: number): Tensor {
  return tf.tidy(() => {
    const D = grid.shape[1]!;
    const { ry, rx } = matrices(M, gh, gw, mode, offset);
    // rows: [gh, M] · [M, M·D] → [gh, M, D]; then columns: [gw, M] · [M, gh·D] → [gw, gh, D] → [gh, gw, D].
    const rows = tf.matMul(tf.tensor2d(ry, [gh, M]), grid.reshape([M, M * D])).reshape([gh, M, D]);
    const cols = tf.matMul(tf.tensor2d(rx, [gw, M]), rows.transpose([1, 0, 2]).reshape([M, gh * D]));
    return cols.reshape([gw, gh, D]).transpose([1, 0, 2]).reshape([gh * gw, D]);
  });
}

/**
 * The position embedding for an image of H×W pixels whose patch grid is gh×gw: pos_embed [1, 1+N, D] itself when
 * the grid is the trained one and the image is square (the official skip test, npatch == N and H == W), else the
 * CLS position followed by the resized grid, [1, 1+gh·gw, D].
 */
export function interpolatePosEmbed(
  posEmbed: Tensor,
  gh: number,
  gw: number,
  imageH: number,
  imageW: number,
  mode: PosEmbedInterpolation,
  offset: number,
): Tensor {
  const N = posEmbed.shape[1]! - 1;
  if (gh * gw === N && imageH === imageW) return posEmbed;
  const M = Math.round(Math.sqrt(N));
  if (M * M !== N) throw new Error(`pos_embed holds ${N} patch positions, not a square grid`);
  return tf.tidy(() => {
    const D = posEmbed.shape[2]!;
    const cls = tf.slice(posEmbed, [0, 0, 0], [1, 1, D]);
    const grid = tf.slice(posEmbed, [0, 1, 0], [1, N, D]).reshape([N, D]);
    return tf.concat([cls, resizePatchGrid(grid, M, gh, gw, mode, offset).expandDims(0)], 1);
  });
}
