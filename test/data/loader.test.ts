// Loaders: identical batches for 0, 1 and 2 workers; resume; shuffling and drop_last; skipped files reported
// through workers; a crashing worker fails fast; the eval loader keeps dataset order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageFolder, MnistDataset, type Dataset } from '../../src/data/datasets.js';
import { EvalLoader, MultiCropLoader, type MultiCropBatch } from '../../src/data/loader.js';
import { dinoV2Augmentation } from '../../src/data/multicrop.js';
import { evalTransform } from '../../src/data/eval_transform.js';
import { Rng } from '../../src/util/rng.js';
import { tempDir } from './helpers.js';

const aug = dinoV2Augmentation({ globalCropsSize: 16, localCropsSize: 8, localCropsNumber: 2 });
const mnist = new MnistDataset('test', { limit: 100 });

async function collect(it: AsyncIterable<MultiCropBatch>): Promise<MultiCropBatch[]> {
  const out: MultiCropBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

test('same batches with 0, 1 and 2 workers; resume from (epoch, iteration); seeded shuffling', async () => {
  const runs: MultiCropBatch[][] = [];
  let resumed: MultiCropBatch[] = [];
  for (const workers of [0, 1, 2]) {
    const loader = new MultiCropLoader(mnist, { batchSize: 16, augmentation: aug, seed: 5, workers, prefetch: 3 });
    try {
      assert.equal(loader.iterationsPerEpoch, 6); // 100 // 16, last 4 dropped
      runs.push(await collect(loader.epoch(2)));
      if (workers === 2) resumed = await collect(loader.epoch(2, 4));
      const st = loader.stats();
      assert.equal(st.images, workers === 2 ? 32 : 96);
      assert.ok(st.imagesPerSec > 0 && st.waitSeconds >= 0 && st.workerMsPerImage > 0);
    } finally {
      await loader.close();
    }
  }
  const [w0, w1, w2] = runs;
  assert.equal(w0!.length, 6);
  assert.deepEqual(w1, w0);
  assert.deepEqual(w2, w0);
  assert.deepEqual(resumed, w0!.slice(4));
  // Contents: the seeded permutation, crop-major shapes, labels from the dataset.
  const perm = new Rng([5, 2]).permutation(100);
  const b1 = w0![1]!;
  assert.deepEqual(Array.from(b1.indices), perm.slice(16, 32));
  assert.deepEqual(b1.cropSizes, [16, 16, 8, 8]);
  assert.deepEqual(b1.crops.map((c) => c.length), [16 * 3 * 256, 16 * 3 * 256, 16 * 3 * 64, 16 * 3 * 64]);
  assert.deepEqual(Array.from(b1.labels), perm.slice(16, 32).map((i) => mnist.getSync(i).label));
  assert.equal(b1.iteration, 1);
  assert.equal(w0![5]!.iteration, 5);
});

test('epochs differ, drop_last off keeps the partial batch, no shuffle keeps order', async () => {
  const loader = new MultiCropLoader(mnist, { batchSize: 32, augmentation: aug, seed: 1, workers: 0, dropLast: false, shuffle: false });
  assert.equal(loader.iterationsPerEpoch, 4);
  const e0 = await collect(loader.epoch(0));
  assert.deepEqual(e0.map((b) => b.labels.length), [32, 32, 32, 4]);
  assert.deepEqual(Array.from(e0[3]!.indices), [96, 97, 98, 99]);
  const e1 = await collect(loader.epoch(1, 3));
  assert.deepEqual(e1[0]!.indices, e0[3]!.indices);
  assert.notDeepEqual(e1[0]!.crops[0], e0[3]!.crops[0]); // same images, new epoch -> new augmentations
  const shuffled = new MultiCropLoader(mnist, { batchSize: 32, augmentation: aug, seed: 1, workers: 0 });
  assert.notDeepEqual(shuffled.batchIndices(0, 0), shuffled.batchIndices(1, 0));
  assert.throws(() => new MultiCropLoader(mnist, { batchSize: 101, workers: 0 }), /fewer than one batch/);
});

test('unreadable files found by workers are warned about once and counted', async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, `${i}.png`), await sharp({ create: { width: 20, height: 12, channels: 3, background: { r: 40 * i, g: 0, b: 0 } } }).png().toBuffer());
  writeFileSync(join(dir, '2b_broken.jpg'), 'garbage');
  const ds = await ImageFolder.open(dir);
  const warnings: string[] = [];
  const warn = t.mock.method(console, 'warn', (m: string) => warnings.push(m));
  const loader = new MultiCropLoader(ds, { batchSize: 3, augmentation: aug, seed: 0, workers: 2, shuffle: false });
  try {
    for (let epoch = 0; epoch < 2; epoch++) for await (const b of loader.epoch(epoch)) assert.equal(b.labels.length, 3);
    assert.equal(loader.stats().skipped, 1);
  } finally {
    await loader.close();
    warn.mock.restore();
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /2b_broken\.jpg/);
});

test('a worker that crashes fails the loader with a clear error instead of hanging', async () => {
  // A dataset whose source points at missing MNIST files: the worker throws while starting.
  const broken: Dataset = { ...mnist, name: 'broken', length: 100, classes: [], skipped: 0, get: mnist.get.bind(mnist), source: () => ({ kind: 'mnist', split: 'test', dir: '/nonexistent-mnist' }) };
  const loader = new MultiCropLoader(broken, { batchSize: 10, augmentation: aug, workers: 2 });
  try {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('loader hung')), 30_000).unref());
    await assert.rejects(Promise.race([collect(loader.epoch(0)), timeout]), /data loader worker \d crashed: .*nonexistent-mnist/s);
  } finally {
    await loader.close();
  }
});

test('EvalLoader: dataset order, eval transform, last batch partial', async () => {
  const ds = new MnistDataset('test', { limit: 10 });
  const loader = new EvalLoader(ds, { batchSize: 4, transform: { resizeSize: 32, cropSize: 24 }, workers: 1 });
  try {
    const batches = [];
    for await (const b of loader.batches()) batches.push(b);
    assert.deepEqual(batches.map((b) => Array.from(b.indices)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.deepEqual(Array.from(batches[0]!.labels), [7, 2, 1, 0]);
    const want = evalTransform(ds.getSync(9).image, { resizeSize: 32, cropSize: 24 });
    assert.deepEqual(batches[2]!.images.subarray(3 * 24 * 24), want);
    assert.equal(batches[2]!.images.length, 2 * 3 * 24 * 24);
  } finally {
    await loader.close();
  }
});
