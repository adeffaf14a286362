// Resume equivalence: a run interrupted after 3 iterations and resumed gives the same loss sequence (and the same
// final teacher) as the uninterrupted run; a damaged latest checkpoint falls back to the previous one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/checkpoint/safetensors.js';
import { disposeRunNetworks, trainRun } from '../../src/train/run.js';
import { TINY } from './tiny.js';

const quiet = { progress: false, log: () => {}, handleSigint: false };
const losses = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).loss as number);

test('an interrupted and resumed run repeats the uninterrupted loss sequence exactly', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dinots-resume-'));
  try {
    const cfg = { layers: [{ ...TINY, epochs: 2 }] }; // 6 iterations per epoch: the interruption is mid-epoch, the run crosses an epoch
    const a = await trainRun(cfg, { out: join(root, 'a'), ...quiet });
    disposeRunNetworks(a.nets);
    assert.equal(a.status, 'done');
    assert.equal(a.iteration, 12);

    const b1 = await trainRun(cfg, { out: join(root, 'b'), stopAfter: 3, ...quiet });
    disposeRunNetworks(b1.nets);
    assert.equal(b1.status, 'interrupted');
    assert.equal(b1.iteration, 3);
    const b2 = await trainRun({}, { out: join(root, 'b'), resume: true, ...quiet });
    disposeRunNetworks(b2.nets);
    assert.equal(b2.status, 'done');

    const la = losses(join(root, 'a'));
    const lb = losses(join(root, 'b'));
    assert.equal(la.length, 12);
    assert.deepEqual(lb, la);
    assert.ok(new Set(la).size > 1, 'the losses change from step to step');
    const ta = readSafetensors(join(root, 'a', 'teacher_backbone.safetensors')).tensors;
    const tb = readSafetensors(join(root, 'b', 'teacher_backbone.safetensors')).tensors;
    for (const [k, t] of ta) assert.deepEqual(tb.get(k)!.data, t.data, `teacher ${k} differs after resume`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a damaged checkpoint: --resume falls back to the previous one with a warning and still repeats the loss sequence', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dinots-resume-prev-'));
  try {
    const cfg = { layers: [{ ...TINY, epochs: 2 }] };
    const a = await trainRun(cfg, { out: join(root, 'a'), ...quiet });
    disposeRunNetworks(a.nets);
    // Saves at the epoch end (iteration 6) and at the interruption (8): the previous checkpoint is iteration 6's.
    const b1 = await trainRun(cfg, { out: join(root, 'b'), stopAfter: 8, ...quiet });
    disposeRunNetworks(b1.nets);
    assert.equal(b1.iteration, 8);
    const ck = join(root, 'b', 'checkpoint.safetensors');
    const bytes = readFileSync(ck);
    bytes[bytes.length - 100]! ^= 0xff; // one damaged byte in the tensor data (the header still parses)
    writeFileSync(ck, bytes);
    const lines: string[] = [];
    const b2 = await trainRun({}, { out: join(root, 'b'), resume: true, ...quiet, log: (s) => lines.push(s) });
    disposeRunNetworks(b2.nets);
    assert.ok(lines.some((l) => /checkpoint\.safetensors is damaged: its tensors do not match their CRC-32/.test(l) && /resuming from the previous checkpoint .*checkpoint\.prev\.safetensors \(iteration 6\)/.test(l)), lines.join('\n'));
    assert.equal(b2.status, 'done');
    assert.deepEqual(losses(join(root, 'b')), losses(join(root, 'a')), 'one line per iteration, the same losses');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
