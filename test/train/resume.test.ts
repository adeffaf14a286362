// Resume equivalence: a run interrupted after 3 iterations and resumed gives the same loss sequence (and the same
// final teacher) as the uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
