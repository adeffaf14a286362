// Multi-crop augmentation: presets, shapes, determinism, which crop gets blur / solarize (incl. the DINOv2 bug mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataAugmentationDINO, dinoV1Augmentation, dinoV2Augmentation, type MultiCropConfig } from '../../src/data/multicrop.js';
import { toNormalizedChw } from '../../src/data/eval_transform.js';
import { Rng } from '../../src/util/rng.js';
import { photoLike } from './helpers.js';

test('presets: official v1 and v2 settings', () => {
  const v1 = dinoV1Augmentation();
  assert.deepEqual([v1.globalCropsSize, v1.globalCropsScale, v1.localCropsNumber, v1.localCropsSize, v1.localCropsScale], [224, [0.4, 1], 8, 96, [0.05, 0.4]]);
  assert.deepEqual([v1.flipP, v1.jitterP, v1.grayscaleP, v1.solarizeP, v1.blur, v1.blurSigma], [0.5, 0.8, 0.2, 0.2, 'pil', [0.1, 2]]);
  assert.deepEqual(v1.jitter, { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 });
  const v2 = dinoV2Augmentation({ patchSize: 14 });
  assert.deepEqual([v2.globalCropsScale, v2.localCropsScale, v2.localCropsSize, v2.blur], [[0.32, 1], [0.05, 0.32], 98, 'kernel9']);
  assert.equal(dinoV2Augmentation().localCropsSize, 96);
  const p = (c: MultiCropConfig) => [0, 1, 2].map((k) => new DataAugmentationDINO(c).blurProbability(k as 0 | 1 | 2));
  assert.deepEqual(p(v1), [1, 0.1, 0.5]);
  assert.deepEqual(p(v2), [1, 0.1, 0.5]);
  assert.deepEqual(p(dinoV2Augmentation({ blurBugCompat: true })), [0, 0.9, 0.5]);
  assert.throws(() => new DataAugmentationDINO(dinoV1Augmentation({ localCropsScale: [0.4, 0.05] })), /localCropsScale/);
  assert.throws(() => new DataAugmentationDINO(dinoV1Augmentation({ globalCropsSize: 0 })), /globalCropsSize/);
});

test('shapes and determinism given Rng([seed, epoch, index])', () => {
  const img = photoLike(120, 90);
  const aug = new DataAugmentationDINO(dinoV2Augmentation({ globalCropsSize: 32, localCropsSize: 16, localCropsNumber: 3 }));
  const a = aug.apply(img, new Rng([0, 1, 5]));
  assert.deepEqual([a.global.length, a.local.length, a.global[0]!.length, a.local[2]!.length], [2, 3, 3 * 32 * 32, 3 * 16 * 16]);
  const b = aug.apply(img, new Rng([0, 1, 5]));
  assert.deepEqual(a, b);
  const c = aug.apply(img, new Rng([0, 1, 6]));
  assert.notDeepEqual(a.global[0], c.global[0]);
  assert.notDeepEqual(a.global[0], a.global[1]);
  for (const v of [...a.global, ...a.local]) assert.ok(v.every((x) => Number.isFinite(x) && x > -2.2 && x < 2.7));
});

/** Everything off except what a test turns on: each crop is then the whole image, normalised. */
const bare = (o: Partial<MultiCropConfig>) =>
  dinoV2Augmentation({ globalCropsSize: 24, globalCropsScale: [1, 1], localCropsSize: 24, localCropsScale: [1, 1], localCropsNumber: 2, ratio: [1, 1], flipP: 0, jitterP: 0, grayscaleP: 0, solarizeP: 0, blurP: [0, 0, 0], ...o });

test('with every augmentation off, a crop is the normalised image', () => {
  const img = photoLike(24, 24);
  const views = new DataAugmentationDINO(bare({})).apply(img, new Rng(0));
  const ref = toNormalizedChw(img).data;
  for (const v of [...views.global, ...views.local]) v.forEach((x, i) => assert.ok(Math.abs(x - ref[i]!) < 1e-6));
});

test('blur goes to global 1 always and never in the DINOv2 bug mode; solarize only ever touches global 2', () => {
  const img = photoLike(24, 24);
  const ref = toNormalizedChw(img).data;
  const same = (v: Float32Array) => v.every((x, i) => Math.abs(x - ref[i]!) < 1e-6);
  // sigma >= 1 so that every blur visibly changes the image (sigma 0.1 is numerically the identity).
  const fixed = new DataAugmentationDINO(bare({ blurP: [1, 0.1, 0.5], blurSigma: [1, 2] }));
  const compat = new DataAugmentationDINO(bare({ blurP: [1, 0.1, 0.5], blurSigma: [1, 2], blurBugCompat: true }));
  let g2Blurred = 0;
  for (let i = 0; i < 60; i++) {
    const f = fixed.apply(img, new Rng([1, 0, i]));
    assert.ok(!same(f.global[0]!));
    const c = compat.apply(img, new Rng([1, 0, i]));
    assert.ok(same(c.global[0]!));
    if (!same(c.global[1]!)) g2Blurred++;
  }
  assert.ok(g2Blurred > 40, `global 2 blurred ${g2Blurred}/60 times with p 0.9`);
  const sol = new DataAugmentationDINO(bare({ solarizeP: 1 })).apply(img, new Rng(2));
  assert.ok(same(sol.global[0]!) && !same(sol.global[1]!) && sol.local.every(same));
});
