// The attention-finds-the-object score: the 60%-mass mask of each head, upsampled by the patch size, against the
// bright pixels of the image; exact values on hand-made maps, and a model run end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { brightForeground, headJaccards, objectAttentionJaccard } from '../../src/eval/object_attention.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/image.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { dinoConfig } from '../../src/models/config.js';

/** A normalised 3×S×S crop whose pixels `on(y, x)` are white and the rest black. */
function crop(S: number, on: (y: number, x: number) => boolean): Float32Array {
  const out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[c * S * S + y * S + x] = ((on(y, x) ? 1 : 0) - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
  return out;
}

test('brightForeground: pixels above the threshold in [0, 1], from normalised crops', () => {
  const fg = brightForeground(crop(4, (y) => y < 2), 1, 4)[0]!;
  assert.deepEqual([...fg], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => brightForeground(new Float32Array(10), 1, 4), /10 values is not 1 crops of 3x4x4/);
});

test('headJaccards: a head on the object scores 1, a head on the background 0, a head on half of it 1/2', () => {
  // 2×2 patches of 2 px on a 4 px image; the object is the top-left patch.
  const fg = brightForeground(crop(4, (y, x) => y < 2 && x < 2), 1, 4)[0]!;
  const maps = Float32Array.from([
    0.97, 0.01, 0.01, 0.01, // all mass on the object's patch
    0.01, 0.01, 0.01, 0.97, // all mass on a background patch
    0.5, 0.5, 0, 0, // 60% of the mass needs both top patches: object + as much background
  ]);
  assert.deepEqual(headJaccards(maps, 3, [2, 2], 2, fg, 4), [1, 0, 0.5]);
});

test('objectAttentionJaccard: per-head averages in [0, 1] over the images with an object; images without one are skipped', async () => {
  await tf.setBackend('cpu');
  const model = new VisionTransformer({ ...dinoConfig('tiny', 4, { imgSize: 8 }), embedDim: 16, depth: 1, numHeads: 2 }, { seed: 1 });
  const crops = new Float32Array(3 * 3 * 64);
  crops.set(crop(8, (y, x) => y < 4 && x < 4), 0);
  crops.set(crop(8, () => false), 3 * 64); // no object: skipped
  crops.set(crop(8, (y) => y >= 4), 2 * 3 * 64);
  const s = objectAttentionJaccard(model, crops, 3, 8, brightForeground(crops, 3, 8), { batch: 2 });
  assert.equal(s.images, 2);
  assert.equal(s.perHead.length, 2);
  for (const v of s.perHead) assert.ok(v >= 0 && v <= 1);
  assert.equal(s.bestHeadJaccard, Math.max(...s.perHead));
  model.dispose();
});
