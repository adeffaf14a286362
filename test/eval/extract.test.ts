import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { readFileSync } from 'node:fs';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { parseDatasetSpec } from '../../src/data/datasets.js';
import { dinov2Config } from '../../src/models/config.js';
import { createViT } from '../../src/models/index.js';
import { computeFeatures, parseFeatureKind } from '../../src/eval/features.js';
import { extractFeatures, readFeatureSet } from '../../src/eval/extract.js';

await initBackend('cpu');
const model = createViT(dinov2Config('tiny', 2, { embedDim: 16, depth: 3, numHeads: 2, patchSize: 7, imgSize: 28 }), { seed: 1 });

test('feature kinds: cls, patch mean, cls+avgpool and layers:N from the same forward', () => {
  const x = tf.randomNormal([2, 3, 28, 28], 0, 1, 'float32', 3);
  const f = model.forwardFeatures(x);
  const cls = f.clsToken.arraySync() as number[][];
  const avg = tf.mean(f.patchTokens, 1).arraySync() as number[][];
  const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-5);
  const get = (k: string) => computeFeatures(model, x, parseFeatureKind(k)).arraySync() as number[][];
  assert.ok(close(get('cls')[1]!, cls[1]!));
  assert.ok(close(get('patch')[1]!, avg[1]!));
  assert.ok(close(get('cls+avgpool')[0]!, [...cls[0]!, ...avg[0]!]));
  const l2 = get('layers:2')[0]!;
  assert.equal(l2.length, 3 * 16);
  assert.ok(close(l2.slice(16), [...cls[0]!, ...avg[0]!]), 'last block CLS and mean patch come last');
  assert.throws(() => parseFeatureKind('layers:0'), /layers:N/);
  x.dispose();
});

test('extraction writes safetensors + arrow, and resumes after an interruption with identical results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-extract-'));
  try {
    const ds = await parseDatasetSpec('mnist:test:10');
    const opts = { cropSize: 28, resizeSize: 28, batchSize: 4, chunkSize: 3, modelName: 'tiny' };
    const whole = await extractFeatures(model, ds, opts);
    // interrupt after the second batch (8 samples: chunks 0-5 written), then resume
    await assert.rejects(
      extractFeatures(model, ds, { ...opts, outDir: dir, onProgress: (d) => { if (d >= 8) throw new Error('interrupted'); } }),
      /interrupted/,
    );
    const index = JSON.parse(readFileSync(join(dir, 'chunks', 'index.json'), 'utf8'));
    assert.deepEqual([index.done, index.chunks.length], [6, 2]);
    const seen: number[] = [];
    const resumed = await extractFeatures(model, ds, { ...opts, outDir: dir, onProgress: (d) => seen.push(d) });
    assert.equal(seen[0], 6, 'starts after the finished chunks');
    assert.ok(!existsSync(join(dir, 'chunks')));
    assert.deepEqual(resumed.features.data, whole.features.data);
    assert.deepEqual(Array.from(resumed.labels), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]); // first MNIST test labels
    const back = readFeatureSet(dir);
    assert.deepEqual(back.features.data, whole.features.data);
    assert.equal(back.paths[3], 'mnist:test#3');
    const table = tableFromIPC(readFileSync(join(dir, 'features.arrow')));
    assert.equal(table.numRows, 10);
    assert.deepEqual(Array.from(table.getChild('feature')!.get(9)!.toArray() as Float32Array), Array.from(whole.features.data.subarray(9 * 16)));
    await assert.rejects(extractFeatures(model, ds, { ...opts, outDir: dir }), /already holds finished features/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
