// The recipe for an unseen folder: crop and patch sizes from the images and the budget, augmentations that keep a
// symbol what it is; the profile read from real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { folderRecipe, folderRecipeFor } from '../../src/train/folder_recipe.js';
import type { DatasetProfile } from '../../src/data/profile.js';
import { resolveConfig } from '../../src/train/config_layers.js';

const profile = (p: Partial<DatasetProfile>): DatasetProfile => ({
  name: 'x', count: 1000, sampled: 64, medianShortSide: 28, medianLongSide: 28, grayscale: true, darkBackground: true, classes: 10, ...p,
});

test('28 px grayscale digits: 28 px crops, patch 4 (7x7 tokens), 12 px locals, no flips or solarization', () => {
  const r = folderRecipe(profile({}), 10);
  assert.deepEqual(
    [r.layer.global_crop_size, r.layer.patch_size, r.layer.local_crop_size, r.layer.flip_p, r.layer.solarize_p, r.layer.color_augment],
    [28, 4, 12, 0, 0, true],
  );
  assert.ok(r.reasons.some((l) => /no flips/.test(l)));
  // The layer is a valid config over the dino recipe.
  const cfg = resolveConfig({ layers: [r.layer] });
  assert.equal(cfg.crops.global_crops_size, 28);
});

test('colour photos: the official augmentations; the crop never exceeds the images nor the budget cap', () => {
  const small = folderRecipe(profile({ grayscale: false, darkBackground: false, medianShortSide: 500, medianLongSide: 600 }), 10);
  assert.deepEqual([small.layer.global_crop_size, small.layer.patch_size, small.layer.flip_p], [64, 8, undefined]);
  const long = folderRecipe(profile({ grayscale: false, darkBackground: false, medianShortSide: 500 }), null);
  assert.deepEqual([long.layer.global_crop_size, long.layer.patch_size], [224, 16]);
  const tiny = folderRecipe(profile({ grayscale: false, darkBackground: false, medianShortSide: 32 }), 600);
  assert.deepEqual([tiny.layer.global_crop_size, tiny.layer.patch_size], [32, 4]);
});

test('folderRecipeFor reads the images: one-channel PNGs of bright strokes on black are grayscale symbols', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-fit-'));
  try {
    for (const c of ['a', 'b']) {
      mkdirSync(join(dir, c));
      for (let i = 0; i < 4; i++) {
        const px = Buffer.alloc(28 * 28);
        for (let y = 6; y < 22; y++) px[y * 28 + 10 + i] = 255;
        await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(dir, c, `${i}.png`));
      }
    }
    const lines: string[] = [];
    const r = await folderRecipeFor(dir, 10, (l) => lines.push(l));
    assert.deepEqual([r.profile.count, r.profile.medianShortSide, r.profile.grayscale, r.profile.darkBackground, r.profile.classes], [8, 28, true, true, 2]);
    assert.equal(r.layer.flip_p, 0);
    assert.match(lines[0]!, /8 images .*28x28 px median, grayscale, dark background, 2 classes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
