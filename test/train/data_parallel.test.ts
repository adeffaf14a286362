// Data parallelism (src/train/data_parallel.ts): replicas in worker threads that each take a share of the batch
// must update the networks as one replica does on the whole batch (heads without BatchNorm, whose statistics are
// per replica); a run with replicas trains, records them and resumes; a failing replica stops the run with its error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initBackend } from '../../src/backend/select.js';
import { batchBuilder } from '../../src/train/batches.js';
import { resolveConfig } from '../../src/train/config_layers.js';
import { DataParallel, dataParallelStep, splitCrops } from '../../src/train/data_parallel.js';
import { buildSchedules, planRun } from '../../src/train/plan.js';
import { disposeRunNetworks, trainRun } from '../../src/train/run.js';
import { buildRunNetworks } from '../../src/train/run_networks.js';
import { SSLTrainer, trainerPolicies } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { TINY } from './tiny.js';

const quiet = { progress: false, log: () => {}, handleSigint: false };

test('splitCrops gives replica r images r·B .. (r+1)·B of every crop', () => {
  const crop = Float32Array.from({ length: 4 * 3 }, (_, i) => i); // 4 images of 3 values
  const [a, b] = splitCrops([crop, crop], 2);
  assert.deepEqual([...a![0]!], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...b![1]!], [6, 7, 8, 9, 10, 11]);
});

test('two replicas on halves of a batch update student, teacher and center as one replica on the whole batch', async () => {
  await initBackend('cpu');
  const layer = { ...TINY, data_parallel: 2, use_bn_in_head: false, drop_path_rate: 0 };
  const cfg = resolveConfig({ layers: [layer] });
  const one = resolveConfig({ layers: [{ ...layer, data_parallel: 1, batch_size_per_gpu: 2 * 8 }] });
  assert.equal(cfg.optim.lr, one.optim.lr, 'the lr scales with the batch of all replicas');
  const B = cfg.train.batch_size_per_gpu;
  const { global_crops_size: G, local_crops_size: L, local_crops_number: nLocal } = cfg.crops;
  const rng = new Rng([7]);
  const crops = [G, G, ...Array<number>(nLocal).fill(L)].map((s) => Float32Array.from({ length: 2 * B * 3 * s * s }, () => rng.normal()));
  const schedules = buildSchedules(cfg, planRun(cfg, 6, null));
  const make = async () => {
    const { nets } = await buildRunNetworks(cfg, () => {});
    const trainer = new SSLTrainer({ student: nets.student, teacher: nets.teacher, schedules, policies: trainerPolicies(cfg) });
    trainer.syncEmaFromStudent();
    return { nets, trainer };
  };
  const single = await make();
  const parallel = await make();
  const whole = batchBuilder(cfg, single.nets.student, G, false, 2 * B);
  const half = batchBuilder(cfg, parallel.nets.student, G, false, B);
  const dp = await DataParallel.start(cfg, 2, 1, 'cpu');
  try {
    for (let it = 0; it < 3; it++) {
      const a = await dataParallelStep(single.trainer, null, whole, crops, it, false);
      const b = await dataParallelStep(parallel.trainer, dp, half, crops, it, false);
      assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss at ${it}: ${a.loss} vs ${b.loss}`);
      assert.ok(Math.abs(a.teacher_entropy - b.teacher_entropy) < 1e-4);
    }
  } finally {
    await dp.close();
  }
  for (const which of ['studentParams', 'teacherParams'] as const) {
    for (const [name, v] of single.trainer[which]) {
      const x = v.dataSync() as Float32Array;
      const y = parallel.trainer[which].get(name)!.dataSync() as Float32Array;
      const d = x.reduce((m: number, xi: number, i: number) => Math.max(m, Math.abs(xi - y[i]!)), 0);
      assert.ok(d < 2e-5, `${which} ${name} differs by ${d}`);
    }
  }
  const [ca, cb] = [single, parallel].map((s) => s.trainer.dinoLoss.center.values());
  assert.ok(ca!.every((x, i) => Math.abs(x - cb![i]!) < 1e-6), 'the center averages the replicas\' batch means');
  for (const s of [single, parallel]) {
    s.trainer.dispose();
    disposeRunNetworks(s.nets);
  }
});

test('a run with 2 replicas trains a batch of 2·B per step, says so in summary.json, and resumes to the same losses', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dinots-dp-'));
  try {
    const cfg = { layers: [{ ...TINY, data_parallel: 2, batch_size_per_gpu: 4 }] };
    const a = await trainRun(cfg, { out: join(root, 'a'), ...quiet });
    assert.equal(a.status, 'done');
    assert.equal(a.config.run.data_parallel, 2);
    assert.equal(a.plan.iters_per_data_epoch, 6, '48 images in batches of 2 × 4');
    const summary = JSON.parse(readFileSync(join(root, 'a', 'summary.json'), 'utf8')) as { data_parallel: number; images_per_s_per_core: number };
    assert.equal(summary.data_parallel, 2);
    assert.ok(summary.images_per_s_per_core > 0);
    const losses = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    const b1 = await trainRun(cfg, { out: join(root, 'b'), stopAfter: 2, ...quiet });
    assert.equal(b1.status, 'interrupted');
    disposeRunNetworks(b1.nets);
    const b2 = await trainRun({}, { out: join(root, 'b'), resume: true, ...quiet });
    assert.deepEqual(losses(join(root, 'b')), losses(join(root, 'a')));
    for (const r of [a, b2]) disposeRunNetworks(r.nets);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a replica that fails stops the step with its error instead of waiting forever', async () => {
  await initBackend('cpu');
  const cfg = resolveConfig({ layers: [{ ...TINY, data_parallel: 2 }] });
  const dp = await DataParallel.start(cfg, 2, 1, 'cpu');
  try {
    const work = { iteration: 0, teacherTemp: 0.04, crops: [], student: [['no.such.parameter', new Float32Array(1)]] as [string, Float32Array][], teacher: null, centers: [] };
    await assert.rejects(dp.run(() => work), /data-parallel replica 1: .*no parameter no\.such\.parameter/s);
    await assert.rejects(dp.run(() => work), /no parameter/, 'later steps fail with the same error');
  } finally {
    await dp.close();
  }
});
