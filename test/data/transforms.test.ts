// Transforms: Pillow bicubic (hand-computed weights), RandomResizedCrop sampling, colour jitter formulas, blurs,
// solarize, normalise, centre crop, and the eval-transform fixture through the conformance runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bicubicCoeffs, resizeCropToChw, resizeRgbPil } from '../../src/data/resample.js';
import * as T from '../../src/data/transforms.js';
import { evalTransform, nativeAspectTransform } from '../../src/data/eval_transform.js';
import { rgbToChw, roundHalfEven, type ChwImage } from '../../src/data/image.js';
import { Rng } from '../../src/util/rng.js';
import { runFixtures, formatResults } from '../../src/conformance/runner.js';
import { photoLike } from './helpers.js';

const close = (a: number, b: number, tol: number, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);
const chw = (w: number, h: number, f: (c: number, y: number, x: number) => number): ChwImage => {
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = f(c, y, x);
  return { data, width: w, height: h };
};

test('Pillow bicubic: 2 -> 4 upsampling weights and values computed by hand', () => {
  // Output 0: centre 0.25, taps at 0 and 1 with Keys(0.25) = 0.8671875 and Keys(1.25) = -0.0703125, renormalised.
  const c = bicubicCoeffs(2, 4);
  close(c.weights[0]!, 0.8671875 / 0.796875, 1e-15);
  close(c.weights[1]!, -0.0703125 / 0.796875, 1e-15);
  assert.deepEqual([c.start[0], c.count[0]], [0, 2]);
  // [100, 200] -> [91.18, 120.71, 179.29, 208.82] rounded: [91, 121, 179, 209] in every channel.
  const out = resizeRgbPil({ data: Uint8Array.from([100, 100, 100, 200, 200, 200]), width: 2, height: 1 }, 4, 1);
  assert.deepEqual(Array.from(out.data.filter((_, i) => i % 3 === 0)), [91, 121, 179, 209]);
  // Downscaling stretches the support (antialiasing): 12 -> 3 uses up to 2 * ceil(2 * 4) + 1 taps.
  const d = bicubicCoeffs(12, 3);
  assert.equal(d.ksize, 17);
  assert.equal(d.count[1], 12); // the middle output sees the whole row
  // The float path gives the same values before rounding, clamped to [0, 1].
  const f = resizeCropToChw({ data: Uint8Array.from([100, 100, 100, 200, 200, 200]), width: 2, height: 1 }, { top: 0, left: 0, height: 1, width: 2 }, 1, 4);
  close(f.data[1]! * 255, 120.714, 1e-3);
  const edge = resizeCropToChw({ data: Uint8Array.from([0, 0, 0, 255, 255, 255]), width: 2, height: 1 }, { top: 0, left: 0, height: 1, width: 2 }, 1, 4);
  assert.equal(edge.data[0], 0); // -22.5 clamped
  assert.equal(edge.data[3], 1);
});

test('resizeCropToChw of a box equals resizing the cropped image (taps stay inside the box)', () => {
  const img = photoLike(40, 30);
  const box = { top: 5, left: 7, height: 20, width: 25 };
  const cropped = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) cropped.set(img.data.subarray(((box.top + y) * 40 + box.left) * 3, ((box.top + y) * 40 + box.left + box.width) * 3), y * box.width * 3);
  const a = resizeCropToChw(img, box, 11, 13);
  const b = resizeCropToChw({ data: cropped, width: box.width, height: box.height }, { top: 0, left: 0, height: box.height, width: box.width }, 11, 13);
  assert.deepEqual(a.data, b.data);
  // And it agrees with the exact uint8 path to within its roundings (intermediate one amplified by the taps).
  const u = rgbToChw(resizeRgbPil({ data: cropped, width: box.width, height: box.height }, 13, 11));
  for (let i = 0; i < u.data.length; i++) close(a.data[i]!, u.data[i]!, 1.5 / 255, `at ${i}`);
});

test('RandomResizedCrop parameters: torchvision sampling and fallback', () => {
  const rng = new Rng(1);
  for (let k = 0; k < 500; k++) {
    const b = T.rrcParams(rng, 375, 500, [0.05, 0.4]);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 375 && b.left + b.width <= 500);
    const area = (b.height * b.width) / (375 * 500);
    assert.ok(area > 0.045 && area < 0.41, `area ${area}`);
    const r = b.width / b.height;
    assert.ok(r > 0.7 && r < 1.4, `ratio ${r}`);
  }
  assert.deepEqual(T.rrcParams(new Rng(0), 100, 100, [1, 1], [1, 1]), { top: 0, left: 0, height: 100, width: 100 });
  // Impossible (area >= 90% of a 10x100 strip with a square aspect): centre crop with the widest allowed ratio.
  assert.deepEqual(T.rrcParams(new Rng(0), 10, 100, [0.9, 1], [1, 1]), { top: 0, left: 45, height: 10, width: 10 });
  assert.deepEqual(T.rrcParams(new Rng(0), 100, 10, [0.9, 1], [0.5, 1]), { top: 40, left: 0, height: 20, width: 10 });
  assert.deepEqual([roundHalfEven(2.5), roundHalfEven(3.5), roundHalfEven(-0.5), roundHalfEven(1.2)], [2, 4, -0, 1]);
  const a = T.randomResizedCrop(photoLike(60, 40), 16, [0.2, 1], T.DEFAULT_RATIO, new Rng(7));
  const b = T.randomResizedCrop(photoLike(60, 40), 16, [0.2, 1], T.DEFAULT_RATIO, new Rng(7));
  assert.deepEqual([a.width, a.height, a.data.length], [16, 16, 768]);
  assert.deepEqual(a.data, b.data);
});

test('resize (shorter side, torchvision sizes) and centre crop (round-half-even offsets, zero padding)', () => {
  assert.deepEqual(T.shorterSideSize(50, 60, 40), { height: 40, width: 48 });
  assert.deepEqual(T.shorterSideSize(375, 500, 256), { height: 256, width: 341 });
  assert.deepEqual(T.shorterSideSize(500, 375, 256), { height: 341, width: 256 });
  const img = { data: Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => Math.floor(i / 3)), width: 5, height: 4 };
  const c = T.centerCrop(img, 2, 2); // top = round(1) = 1, left = round(1.5) = 2
  assert.deepEqual(Array.from(c.data.filter((_, i) => i % 3 === 0)), [7, 8, 12, 13]);
  const p = T.centerCrop({ data: Uint8Array.from([9, 9, 9]), width: 1, height: 1 }, 3, 3);
  assert.deepEqual(Array.from(p.data.filter((_, i) => i % 3 === 0)), [0, 0, 0, 0, 9, 0, 0, 0, 0]);
  assert.equal(T.resizeShorter(img, 4).data.length, img.data.length); // already that size: unchanged copy
  assert.deepEqual(T.resizeShorter(img, 4).data, img.data);
});

test('colour jitter: torchvision tensor formulas', () => {
  const base = () => chw(4, 3, (c, y, x) => 0.1 + 0.2 * c + 0.05 * x + 0.01 * y);
  const b = T.adjustBrightness(base(), 1.5);
  base().data.forEach((v, i) => close(b.data[i]!, Math.min(1, 1.5 * v), 1e-6));
  // Contrast blends with the scalar mean m of the grayscale image, so (no clipping here) the new grayscale mean is
  // f m + (1 - f) m (0.2989 + 0.587 + 0.114): torchvision's weights sum to 0.9999.
  const grayMean = (im: ChwImage) => {
    const n = im.width * im.height;
    let s = 0;
    for (let i = 0; i < n; i++) s += 0.2989 * im.data[i]! + 0.587 * im.data[n + i]! + 0.114 * im.data[2 * n + i]!;
    return s / n;
  };
  const c = T.adjustContrast(base(), 0.7);
  close(grayMean(c), 0.7 * grayMean(base()) + 0.3 * 0.9999 * grayMean(base()), 1e-7);
  assert.ok(T.adjustContrast(base(), 0).data.every((v, _, a) => Math.abs(v - a[0]!) < 1e-6)); // factor 0: flat
  // Saturation 0 = grayscale; 1 = identity.
  assert.deepEqual(T.adjustSaturation(base(), 0).data, T.grayscale(base()).data);
  base().data.forEach((v, i, a) => close(T.adjustSaturation(base(), 1).data[i]!, a[i]!, 1e-6));
  // Hue: pure red shifted by 1/3 turn is pure green; by 0 is the identity; two half turns are the identity.
  const red = T.adjustHue(chw(1, 1, (ch) => (ch === 0 ? 1 : 0)), 1 / 3);
  [0, 1, 0].forEach((v, i) => close(red.data[i]!, v, 1e-6));
  const x = base();
  T.adjustHue(x, 0);
  x.data.forEach((v, i) => close(v, base().data[i]!, 1e-6));
  T.adjustHue(T.adjustHue(x, 0.5), -0.5);
  x.data.forEach((v, i) => close(v, base().data[i]!, 1e-6));
  // Parameters: a permutation of the 4 ops and factors in range.
  const rng = new Rng(3);
  const orders = new Set<string>();
  for (let k = 0; k < 300; k++) {
    const p = T.colorJitterParams(rng, { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 });
    assert.deepEqual([...p.order].sort(), [0, 1, 2, 3]);
    orders.add(p.order.join(''));
    assert.ok(p.brightness! >= 0.6 && p.brightness! <= 1.4 && p.saturation! >= 0.8 && p.saturation! <= 1.2 && Math.abs(p.hue!) <= 0.1);
  }
  assert.equal(orders.size, 24);
});

test('Gaussian blurs: constants unchanged, impulse spread has the requested variance', () => {
  for (const blur of [(im: ChwImage) => T.gaussianBlurPil(im, 1.3), (im: ChwImage) => T.gaussianBlurKernel(im, 1.3, 9)]) {
    const flat = blur(chw(7, 5, () => 0.42));
    flat.data.forEach((v) => close(v, 0.42, 1e-6));
  }
  const impulse = () => chw(41, 41, (_, y, x) => (y === 20 && x === 20 ? 1 : 0));
  const varianceX = (im: ChwImage) => {
    let s = 0, m = 0;
    for (let y = 0; y < 41; y++) for (let x = 0; x < 41; x++) {
      s += im.data[y * 41 + x]!;
      m += im.data[y * 41 + x]! * (x - 20) ** 2;
    }
    close(s, 1, 1e-5, 'mass');
    return m / s;
  };
  // Pillow: 3 extended box blurs whose total variance is exactly sigma^2 (Gwosdek et al.).
  for (const sigma of [0.1, 0.7, 2]) close(varianceX(T.gaussianBlurPil(impulse(), sigma)), sigma * sigma, 1e-5, `pil ${sigma}`);
  // torchvision kernel 9: a sampled Gaussian, its variance ~sigma^2 while the kernel is wide enough.
  close(varianceX(T.gaussianBlurKernel(impulse(), 1, 9)), 1, 2e-3, 'kernel9');
  const k = T.gaussianKernel1d(9, 2);
  close(k.reduce((a, v) => a + v, 0), 1, 1e-12);
  close(k[4]! / k[3]!, Math.exp(1 / 8), 1e-12);
  // Reflect padding: an edge impulse is mirrored without repeating the edge pixel.
  const e = T.gaussianBlurKernel(chw(9, 1, (_, __, x) => (x === 0 ? 1 : 0)), 1, 3);
  const w = T.gaussianKernel1d(3, 1);
  close(e.data[0]!, w[1]!, 1e-6);
  close(e.data[1]!, w[0]!, 1e-6);
});

test('solarize, grayscale, flip, normalise', () => {
  const s = T.solarize(chw(3, 1, (_, __, x) => [0.2, 128 / 255, 0.9][x]!));
  [0.2, 1 - 128 / 255, 0.1].forEach((v, i) => close(s.data[i]!, v, 1e-6));
  const g = T.grayscale(chw(1, 1, (c) => [1, 0.5, 0][c]!));
  [0, 1, 2].forEach((c) => close(g.data[c]!, 0.2989 + 0.2935, 1e-6));
  const f = T.hflip(chw(3, 2, (c, y, x) => c * 100 + y * 10 + x));
  assert.deepEqual(Array.from(f.data.slice(0, 6)), [2, 1, 0, 12, 11, 10]);
  const n = T.normalize(chw(1, 1, () => 0.5), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
  [0.485, 0.456, 0.406].forEach((m, c) => close(n.data[c]!, (0.5 - m) / [0.229, 0.224, 0.225][c]!, 1e-6));
});

test('eval transform and native-aspect variant', () => {
  const img = photoLike(60, 50);
  const out = evalTransform(img, { resizeSize: 40, cropSize: 32 });
  assert.equal(out.length, 3 * 32 * 32);
  assert.equal(evalTransform(photoLike(500, 375)).length, 3 * 224 * 224);
  const na = nativeAspectTransform(photoLike(500, 375), { patchSize: 14 }); // 224 x 298.67 -> 224 x 294
  assert.deepEqual([na.height, na.width], [224, 294]);
  const capped = nativeAspectTransform(photoLike(900, 100), { patchSize: 16, shorterSide: 64, maxSide: 200 });
  assert.deepEqual([capped.height, capped.width], [16, 208]); // 64x576 capped to 22.2x200 -> 16x208
  assert.throws(() => evalTransform({ data: new Uint8Array(5), width: 2, height: 2 }), /expected RGB uint8/);
});

const fixtures = join(new URL('../..', import.meta.url).pathname, '..', 'shared', 'conformance', 'fixtures');
test('preprocessing fixture (dinov2_eval_transform) passes through the conformance runner', { skip: !existsSync(join(fixtures, 'manifest.json')) && 'no fixtures' }, async () => {
  const results = await runFixtures(fixtures, { only: ['dinov2_eval_transform'] });
  assert.equal(results.length, 1);
  assert.equal(results[0]!.status, 'pass', formatResults(results));
  // Our resize is Pillow-exact: no difference at all.
  for (const t of results[0]!.tensors) assert.ok(t.maxAbs <= 1e-6, `${t.tensor} ${t.maxAbs}`);
});
