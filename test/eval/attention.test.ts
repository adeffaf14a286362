import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { dinov2Config } from '../../src/models/config.js';
import { createViT } from '../../src/models/index.js';
import { clsAttentionMaps, jaccard, massThresholdMask, meanMap } from '../../src/eval/attention.js';
import { Rng } from '../../src/util/rng.js';

await initBackend('cpu');

test('mass-threshold masks: hand-checked case', () => {
  // values 1,4,2,3 (sum 10); ascending 1,2,3,4 have cumulative shares 0.1 0.3 0.6 1.0
  // keep 60%: keep where > 0.4 -> 3 and 4 (70% of the mass)
  assert.deepEqual(Array.from(massThresholdMask([1, 4, 2, 3], 0.6)), [0, 1, 0, 1]);
  // keep 75%: keep where > 0.25 -> 2, 3 and 4
  assert.deepEqual(Array.from(massThresholdMask([1, 4, 2, 3], 0.75)), [0, 1, 1, 1]);
  assert.deepEqual(Array.from(massThresholdMask([1, 4, 2, 3], 1)), [1, 1, 1, 1]);
});

test('mass-threshold masks keep the stated mass with the fewest largest values', () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 50; trial++) {
    const v = Array.from({ length: 1 + rng.randint(0, 60) }, () => rng.random() ** 3);
    const total = v.reduce((a, b) => a + b, 0);
    const th = rng.uniform(0.05, 0.95);
    const mask = massThresholdMask(v, th);
    const kept = v.filter((_, i) => mask[i]);
    const keptMass = kept.reduce((a, b) => a + b, 0) / total;
    assert.ok(keptMass >= th - 1e-12, `kept ${keptMass} < ${th}`);
    // minimal: without its smallest member the kept set holds less than th
    assert.ok(keptMass - Math.min(...kept) / total < th + 1e-12);
    // the kept values are the largest ones
    const dropped = v.filter((_, i) => !mask[i]);
    if (dropped.length) assert.ok(Math.max(...dropped) <= Math.min(...kept));
  }
});

test('jaccard index', () => {
  assert.equal(jaccard([1, 1, 0, 0], [0, 1, 1, 0]), 1 / 3);
  assert.equal(jaccard([0, 0], [0, 0]), 1);
  assert.equal(jaccard([1, 0], [0, 1]), 0);
});

test('CLS attention maps are the CLS row of the last block without CLS and registers', () => {
  const cfg = dinov2Config('tiny', 4, { embedDim: 32, depth: 2, numHeads: 2, patchSize: 8, imgSize: 32 });
  const model = createViT(cfg, { seed: 3 });
  const x = tf.randomNormal([1, 3, 32, 24], 0, 1, 'float32', 1);
  const maps = clsAttentionMaps(model, x);
  assert.deepEqual([maps.heads, maps.gridH, maps.gridW], [2, 4, 3]);
  const attn = model.getLastSelfAttention(x).arraySync() as number[][][][];
  for (let h = 0; h < 2; h++) {
    const row = attn[0]![h]![0]!;
    assert.equal(row.length, 1 + 4 + 12);
    row.slice(5).forEach((v, i) => assert.ok(Math.abs(v - maps.maps[h]![i]!) < 1e-7));
    const sum = maps.maps[h]!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - (1 - row.slice(0, 5).reduce((a, b) => a + b, 0))) < 1e-5);
  }
  assert.equal(meanMap(maps.maps)[0], (maps.maps[0]![0]! + maps.maps[1]![0]!) / 2);
  x.dispose();
  model.dispose();
});
