// Datasets: ImageFolder (labels, order, flat), FileList, unreadable-file skipping, MNIST IDX parsing, specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FileList, ImageFolder, MnistDataset, parseDatasetSpec, parseIdx, datasetFromSource } from '../../src/data/datasets.js';
import { tempDir } from './helpers.js';

/** A w x h PNG filled with one grey level (so a decoded sample tells which file it came from). */
const png = (level: number, w = 6, h = 4) => sharp({ create: { width: w, height: h, channels: 3, background: { r: level, g: level, b: level } } }).png().toBuffer();

test('ImageFolder: class folders sorted -> labels, nested files in sorted-walk order, other files ignored', async (t) => {
  const root = tempDir(t);
  for (const d of ['dog', 'cat', 'cat/sub', 'bird']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'dog', 'b.png'), await png(30));
  writeFileSync(join(root, 'dog', 'a.JPG'), await sharp(await png(20)).jpeg().toBuffer());
  writeFileSync(join(root, 'dog', 'readme.txt'), 'not an image');
  writeFileSync(join(root, 'cat', 'z.png'), await png(10));
  writeFileSync(join(root, 'cat', 'sub', 'a.png'), await png(11));
  writeFileSync(join(root, 'bird', 'x.webp'), await sharp(await png(5)).webp({ lossless: true }).toBuffer());
  const ds = await ImageFolder.open(root);
  assert.deepEqual(ds.classes, ['bird', 'cat', 'dog']);
  assert.deepEqual(ds.paths.map((p) => p.slice(root.length + 1)), ['bird/x.webp', 'cat/z.png', 'cat/sub/a.png', 'dog/a.JPG', 'dog/b.png']);
  assert.deepEqual(ds.labels, [0, 1, 1, 2, 2]);
  const s = await ds.get(2);
  assert.deepEqual([s.label, s.index, s.image.width, s.image.height, s.image.data[0]], [1, 2, 6, 4, 11]);
  assert.equal(s.path, join(root, 'cat', 'sub', 'a.png'));
});

test('flat folder -> unlabelled; empty folder -> clear error', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'b.png'), await png(2));
  writeFileSync(join(root, 'a.png'), await png(1));
  const ds = await parseDatasetSpec(root);
  assert.equal(ds.length, 2);
  assert.deepEqual(ds.classes, []);
  const s = await ds.get(0);
  assert.equal(s.label, undefined);
  assert.equal(s.image.data[0], 1);
  const empty = tempDir(t);
  writeFileSync(join(empty, 'notes.txt'), 'x');
  await assert.rejects(ImageFolder.open(empty), /no images found/);
  await assert.rejects(parseDatasetSpec(join(empty, 'missing')), /does not exist/);
});

test('empty, truncated, corrupt and fake image files are skipped with one warning each and counted', async (t) => {
  const root = tempDir(t);
  const good = await sharp(await png(77, 40, 30)).jpeg().toBuffer();
  writeFileSync(join(root, '0_good.jpg'), good);
  writeFileSync(join(root, '1_empty.png'), '');
  writeFileSync(join(root, '2_truncated.jpg'), good.subarray(0, good.length >> 1));
  writeFileSync(join(root, '3_corrupt.png'), Buffer.concat([(await png(1)).subarray(0, 40), Buffer.alloc(60, 0xab)]));
  writeFileSync(join(root, '4_fake.jpg'), 'hello, I am text');
  writeFileSync(join(root, '5_good.png'), await png(55));
  writeFileSync(join(root, 'list.txt'), 'not part of the folder dataset');
  const warnings: string[] = [];
  const ds = await ImageFolder.open(root, { onSkip: (p) => warnings.push(p) });
  assert.equal(ds.length, 6);
  const got = [];
  for (let i = 0; i < ds.length; i++) got.push((await ds.get(i)).index);
  assert.deepEqual(got, [0, 5, 5, 5, 5, 5]); // each bad one replaced by the next readable index
  assert.equal(ds.skipped, 4);
  assert.deepEqual(warnings.map((p) => p.slice(root.length + 1)), ['1_empty.png', '2_truncated.jpg', '3_corrupt.png', '4_fake.jpg']);
  assert.match(ds.skippedFiles.get(join(root, '1_empty.png'))!, /empty/);
  // Wrap-around: the last file bad -> index 0.
  const onlyBad = tempDir(t);
  writeFileSync(join(onlyBad, 'a.png'), '');
  writeFileSync(join(onlyBad, 'b.jpg'), 'x');
  const bad = await ImageFolder.open(onlyBad, { onSkip: () => {} });
  await assert.rejects(bad.get(1), /none of its 2 images can be read/);
});

test('FileList: relative/absolute paths, labels, comments; inconsistent labels rejected', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'imgs'));
  writeFileSync(join(root, 'imgs', 'a b.png'), await png(3));
  writeFileSync(join(root, 'c.png'), await png(4));
  writeFileSync(join(root, 'train.txt'), `# comment\nimgs/a b.png 2\n\n${join(root, 'c.png')} 0\n`);
  const ds = await parseDatasetSpec(join(root, 'train.txt'));
  assert.equal(ds.length, 2);
  assert.deepEqual(ds.classes, ['0', '1', '2']);
  const s = await ds.get(0);
  assert.deepEqual([s.label, s.image.data[0]], [2, 3]);
  writeFileSync(join(root, 'nolabels.lst'), 'imgs/a b.png\nc.png\n');
  const unl = await parseDatasetSpec(`list:${join(root, 'nolabels.lst')}`);
  assert.equal((await unl.get(0)).label, undefined);
  assert.equal((await unl.get(0)).path, join(root, 'imgs', 'a b.png'));
  writeFileSync(join(root, 'mixed.txt'), 'c.png 1\nc.png\n');
  await assert.rejects(FileList.open(join(root, 'mixed.txt')), /mixed.txt:2: either every line has a label/);
});

test('MNIST: IDX parsing, labels and a known pixel sum (checked with an independent Python reader)', async () => {
  const train = new MnistDataset('train');
  assert.equal(train.length, 60000);
  const labels = [];
  for (let i = 0; i < 10; i++) labels.push((await train.get(i)).label);
  assert.deepEqual(labels, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  const first = await train.get(0);
  assert.deepEqual([first.image.width, first.image.height], [28, 28]);
  let sum = 0;
  for (let p = 0; p < 784; p++) {
    assert.ok(first.image.data[3 * p] === first.image.data[3 * p + 1] && first.image.data[3 * p] === first.image.data[3 * p + 2]);
    sum += first.image.data[3 * p]!;
  }
  assert.equal(sum, 27525);
  const last = train.getSync(59999);
  assert.equal(last.label, 8);
  assert.equal(last.image.data.reduce((a, v) => a + v, 0), 3 * 20920);
  const test5 = await parseDatasetSpec('mnist:test:5');
  assert.deepEqual([test5.length, test5.name], [5, 'mnist:test:5']);
  assert.equal((await test5.get(0)).label, 7);
  await assert.rejects(test5.get(5), /out of range/);
  assert.equal((await datasetFromSource(test5.source()).get(4)).label, 4);
  await assert.rejects(parseDatasetSpec('mnist:val'), /expected mnist:train/);
});

test('parseIdx validates magic, type and size', () => {
  const ok = Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
  const a = parseIdx(ok);
  assert.deepEqual(a.dims, [2, 3]);
  assert.deepEqual(Array.from(a.data), [1, 2, 3, 4, 5, 6]);
  assert.throws(() => parseIdx(ok.subarray(0, 17), 'x.idx'), /x.idx: 5 data bytes, dims \[2,3\] need 6/);
  assert.throws(() => parseIdx(Uint8Array.from([1, 0, 8, 1])), /bad magic/);
  assert.throws(() => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0])), /not uint8/);
});
