import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { dinoConfig } from '../../src/models/config.js';
import { createViT } from '../../src/models/index.js';
import { patchFeatures } from '../../src/eval/features.js';
import { mutualNearestNeighbours } from '../../src/eval/match.js';
import type { Matrix } from '../../src/util/matrix.js';

await initBackend('cpu');

test('mutual nearest neighbours on a hand-made case', () => {
  const a: Matrix = { data: Float32Array.from([1, 0, 0, 1, 1, 1]), rows: 3, cols: 2 };
  const b: Matrix = { data: Float32Array.from([0, 2, 3, 0.1]), rows: 2, cols: 2 };
  // cosines: a0 (1,0): b0 0, b1 .9994; a1 (0,1): b0 1, b1 .0333; a2 (1,1): b0 .7071, b1 .7303
  // row bests a0->b1, a1->b0, a2->b1; column bests b0->a1, b1->a0: mutual (a1,b0) and (a0,b1), not a2
  const m = mutualNearestNeighbours(a, b);
  assert.deepEqual(m.map((c) => [c.a, c.b]), [[1, 0], [0, 1]]); // a1-b0 has cos 1, a0-b1 cos 0.9994
});

test('an image matched with itself gives the identity correspondence', () => {
  const model = createViT(dinoConfig('tiny', 8, { embedDim: 32, depth: 2, numHeads: 2, imgSize: 48 }), { seed: 4 });
  const x = tf.randomUniform([1, 3, 48, 40], -2, 2, 'float32', 7);
  const f = patchFeatures(model, x);
  assert.deepEqual([f.gridH, f.gridW, f.rows], [6, 5, 30]);
  const m = mutualNearestNeighbours(f, f);
  assert.equal(m.length, 30);
  for (const c of m) {
    assert.equal(c.a, c.b);
    assert.ok(Math.abs(c.similarity - 1) < 1e-5);
  }
  x.dispose();
  model.dispose();
});
