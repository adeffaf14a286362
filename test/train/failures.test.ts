// A NaN/Inf loss stops the run with a clear message and keeps the last good checkpoint; a folder with unreadable
// files trains and reports them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { disposeRunNetworks, trainRun } from '../../src/train/run.js';
import { loadTrainCheckpoint } from '../../src/train/run_checkpoint.js';
import { TINY } from './tiny.js';

const quiet = { progress: false, handleSigint: false };

test('a non-finite loss stops the run with a message and keeps the last good checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-nan-'));
  try {
    const lines: string[] = [];
    // One batch per epoch, so a checkpoint is written after every step; an absurd lr blows the weights up at once.
    const r = await trainRun({ layers: [{ ...TINY, data: 'mnist:train:8', epochs: 5, lr: 1e37, clip_grad: 0 }] }, { out: dir, ...quiet, log: (s) => lines.push(s) });
    disposeRunNetworks(r.nets);
    assert.equal(r.status, 'nan');
    assert.match(r.message!, /loss is (NaN|-?Infinity) at iteration \d+: stopping training \(the last good checkpoint is kept\)/);
    assert.ok(lines.some((l) => l.includes('stopping training')), 'the message is printed');
    const ck = loadTrainCheckpoint(join(dir, 'checkpoint.safetensors'));
    assert.ok(ck.progress.iteration >= 1 && ck.progress.iteration === r.iteration, `checkpoint at iteration ${ck.progress.iteration}, run stopped at ${r.iteration}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder with unreadable files trains and reports them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-bad-'));
  try {
    const data = join(dir, 'images');
    for (const cls of ['a', 'b']) {
      mkdirSync(join(data, cls), { recursive: true });
      for (let i = 0; i < 6; i++) {
        const px = Buffer.alloc(12 * 12 * 3, cls === 'a' ? 40 * i : 255 - 30 * i);
        await sharp(px, { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(join(data, cls, `img${i}.png`));
      }
    }
    writeFileSync(join(data, 'a', 'broken.jpg'), Buffer.from('this is not a jpeg'));
    writeFileSync(join(data, 'b', 'empty.png'), Buffer.alloc(0));
    const lines: string[] = [];
    const r = await trainRun({ layers: [{ ...TINY, data, batch_size_per_gpu: 4, epochs: 1 }] }, { out: join(dir, 'run'), ...quiet, log: (s) => lines.push(s) });
    disposeRunNetworks(r.nets);
    assert.equal(r.status, 'done');
    assert.equal(r.datasetSize, 14);
    assert.equal(r.iteration, 3);
    assert.equal(r.skippedFiles, 2);
    assert.deepEqual(r.skippedPaths.map((p) => p.split('/').pop()).sort(), ['broken.jpg', 'empty.png']);
    assert.ok(lines.filter((l) => l.includes('skipping unreadable image')).length === 2, 'each bad file is reported once');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('files deleted or truncated while the run trains are skipped and reported; training goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-vanish-'));
  try {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'a'), { recursive: true });
    for (let i = 0; i < 12; i++) {
      await sharp(Buffer.alloc(12 * 12 * 3, 20 * i), { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(join(data, 'a', `img${i}.png`));
    }
    const lines: string[] = [];
    const log = (s: string) => {
      lines.push(s);
      // The run has listed the folder: now two files disappear and one is cut short, before any batch is read.
      if (s.startsWith('dinots train')) {
        rmSync(join(data, 'a', 'img0.png'));
        rmSync(join(data, 'a', 'img1.png'));
        writeFileSync(join(data, 'a', 'img2.png'), readFileSync(join(data, 'a', 'img2.png')).subarray(0, 20));
      }
    };
    const r = await trainRun({ layers: [{ ...TINY, data, batch_size_per_gpu: 4, epochs: 2 }] }, { out: join(dir, 'run'), ...quiet, log });
    disposeRunNetworks(r.nets);
    assert.equal(r.status, 'done');
    assert.equal(r.iteration, 6);
    assert.deepEqual(r.skippedPaths.map((p) => p.split('/').pop()).sort(), ['img0.png', 'img1.png', 'img2.png']);
    assert.equal(lines.filter((l) => l.includes('skipping unreadable image')).length, 3, lines.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
