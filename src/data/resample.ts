// Bicubic resampling with Pillow's semantics (Pillow src/libImaging/Resample.c), which is what torchvision's Resize and
// RandomResizedCrop do on PIL images, i.e. in the official DINO/DINOv2 pipelines:
//   - separable: a horizontal pass, then a vertical pass;
//   - Keys cubic with a = -0.5, support 2, stretched by the scale factor when downscaling (antialiasing);
//   - taps clipped to the (cropped) input and renormalised to sum to 1.
// Two flavours:
//   resizeRgbPil  uint8 -> uint8, bit-exact with Pillow (22-bit fixed-point weights, clip to 0..255 after each pass);
//   resizeCropToChw  uint8 HWC crop -> float32 CHW in [0, 1], the same weights in float (no rounding), clamped like the
//                    uint8 path (used for augmentation, where the crop goes straight to float).
import type { Box, ChwImage, RgbImage } from './image.js';

const PRECISION_BITS = 32 - 8 - 2;
const FIXED_ONE = 2 ** PRECISION_BITS;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per output index: first input index, number of taps, and `ksize` weights (zero-padded). */
export interface Coeffs {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  ksize: number;
}

/** Pillow's precompute_coeffs for an input span [0, inSize) mapped onto outSize samples. */
export function bicubicCoeffs(inSize: number, outSize: number): Coeffs {
  const support0 = 2;
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      weights[base + x] = w;
      ww += w;
    }
    if (ww !== 0) for (let x = 0; x < xmax; x++) weights[base + x]! /= ww;
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

/** Pillow's normalize_coeffs_8bpc: weights as 22-bit fixed point, rounded half away from zero. */
function fixedPoint(c: Coeffs): Float64Array {
  return c.weights.map((w) => (w < 0 ? Math.trunc(-0.5 + w * FIXED_ONE) : Math.trunc(0.5 + w * FIXED_ONE)));
}

/** Pillow's clip8 of a fixed-point accumulator. */
function clip8(acc: number): number {
  if (acc >= 256 * FIXED_ONE) return 255;
  if (acc <= 0) return 0;
  return Math.floor(acc / FIXED_ONE);
}

/** Bicubic resize of an RGB uint8 image, bit-exact with PIL `Image.resize(size, Image.BICUBIC)`. */
export function resizeRgbPil(img: RgbImage, outWidth: number, outHeight: number): RgbImage {
  const { width, height } = img;
  if (outWidth < 1 || outHeight < 1) throw new Error(`resize: output size ${outWidth}x${outHeight} must be at least 1x1`);
  let cur = img;
  if (outWidth !== width) {
    const c = bicubicCoeffs(width, outWidth);
    const k = fixedPoint(c);
    const out = new Uint8Array(outWidth * height * 3);
    const src = cur.data;
    for (let y = 0; y < height; y++) {
      const row = y * width * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        let r = FIXED_ONE / 2, g = r, b = r;
        const base = xx * c.ksize;
        let p = row + c.start[xx]! * 3;
        for (let t = 0; t < c.count[xx]!; t++, p += 3) {
          const w = k[base + t]!;
          r += src[p]! * w;
          g += src[p + 1]! * w;
          b += src[p + 2]! * w;
        }
        const o = (y * outWidth + xx) * 3;
        out[o] = clip8(r);
        out[o + 1] = clip8(g);
        out[o + 2] = clip8(b);
      }
    }
    cur = { data: out, width: outWidth, height };
  }
  if (outHeight !== height) {
    const c = bicubicCoeffs(height, outHeight);
    const k = fixedPoint(c);
    const w3 = cur.width * 3;
    const out = new Uint8Array(w3 * outHeight);
    const src = cur.data;
    for (let yy = 0; yy < outHeight; yy++) {
      const base = yy * c.ksize;
      for (let x = 0; x < w3; x++) {
        let acc = FIXED_ONE / 2;
        let p = c.start[yy]! * w3 + x;
        for (let t = 0; t < c.count[yy]!; t++, p += w3) acc += src[p]! * k[base + t]!;
        out[yy * w3 + x] = clip8(acc);
      }
    }
    cur = { data: out, width: cur.width, height: outHeight };
  }
  return cur === img ? { data: img.data.slice(), width, height } : cur;
}

/**
 * Crops `box` out of an RGB uint8 image and bicubic-resizes it to outHeight x outWidth, as torchvision's
 * resized_crop on a PIL image (crop, then resize: taps never reach outside the box), straight into float32 CHW
 * in [0, 1]. Works in float without rounding; clamps to [0, 255] after each pass like Pillow.
 */
export function resizeCropToChw(img: RgbImage, box: Box, outHeight: number, outWidth: number): ChwImage {
  const { top, left, height, width } = box;
  if (top < 0 || left < 0 || height < 1 || width < 1 || top + height > img.height || left + width > img.width) {
    throw new Error(`resizeCropToChw: box ${JSON.stringify(box)} is outside the ${img.width}x${img.height} image`);
  }
  const src = img.data;
  const stride = img.width * 3;
  const ch = bicubicCoeffs(width, outWidth);
  const cv = bicubicCoeffs(height, outHeight);
  // Horizontal pass: `height` rows of the box -> planar temp [3][height][outWidth], 0..255 scale.
  const tplane = height * outWidth;
  const tmp = new Float32Array(3 * tplane);
  for (let y = 0; y < height; y++) {
    const row = (top + y) * stride + left * 3;
    const orow = y * outWidth;
    for (let xx = 0; xx < outWidth; xx++) {
      let r = 0, g = 0, b = 0;
      const base = xx * ch.ksize;
      let p = row + ch.start[xx]! * 3;
      const n = ch.count[xx]!;
      for (let t = 0; t < n; t++, p += 3) {
        const w = ch.weights[base + t]!;
        r += src[p]! * w;
        g += src[p + 1]! * w;
        b += src[p + 2]! * w;
      }
      tmp[orow + xx] = r < 0 ? 0 : r > 255 ? 255 : r;
      tmp[tplane + orow + xx] = g < 0 ? 0 : g > 255 ? 255 : g;
      tmp[2 * tplane + orow + xx] = b < 0 ? 0 : b > 255 ? 255 : b;
    }
  }
  // Vertical pass: one register accumulator per output pixel, taps `outWidth` apart; clamp and scale to [0, 1].
  const oplane = outHeight * outWidth;
  const out = new Float32Array(3 * oplane);
  for (let c = 0; c < 3; c++) {
    for (let yy = 0; yy < outHeight; yy++) {
      const base = yy * cv.ksize;
      const n = cv.count[yy]!;
      const first = c * tplane + cv.start[yy]! * outWidth;
      const orow = c * oplane + yy * outWidth;
      for (let x = 0; x < outWidth; x++) {
        let v = 0;
        for (let t = 0, p = first + x; t < n; t++, p += outWidth) v += tmp[p]! * cv.weights[base + t]!;
        out[orow + x] = v <= 0 ? 0 : v >= 255 ? 1 : v / 255;
      }
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}
