// DinoTrainer: multi-crop grouping, flat tensor count over steps, teacher EMA direction, NaN handling.
import { test } from 'node:test';
import { plannedStepSeconds } from '../../src/train/run_common.js';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { DINOLoss } from '../../src/ssl/dino_loss.js';
import { resolveConfig } from '../../src/train/run.js';
import { DinoTrainer, NonFiniteLossError } from '../../src/train/dino_trainer.js';
import { sameResolutionRuns } from '../../src/train/multicrop.js';
import { buildNetworks, disposeNetworks } from '../../src/train/networks.js';
import { TINY } from './tiny.js';

await initBackend('cpu');

function setup() {
  const cfg = resolveConfig(TINY);
  const nets = buildNetworks(cfg);
  const loss = new DINOLoss({ outDim: cfg.out_dim, ncrops: 4, warmupTeacherTemp: 0.04, teacherTemp: 0.04, warmupTeacherTempEpochs: 0, nepochs: 1 });
  const n = 10;
  const trainer = new DinoTrainer({
    student: nets.student, teacher: nets.teacher, loss, clipGrad: 3, freezeLastLayer: 0,
    schedules: { lr: new Float64Array(n).fill(1e-2), wd: new Float64Array(n).fill(0.04), momentum: new Float64Array(n).fill(0.9) },
  });
  trainer.syncTeacherFromStudent();
  const crops = [8, 8, 4, 4].map((s, i) => tf.randomNormal([2, 3, s, s], 0, 1, 'float32', i));
  return { nets, loss, trainer, crops };
}

test('same-resolution crops are grouped in consecutive runs', () => {
  const t = (s: number) => tf.zeros([1, 3, s, s]);
  const crops = [t(8), t(8), t(4), t(4), t(4), t(8)];
  assert.deepEqual(sameResolutionRuns(crops), [[0, 2], [2, 5], [5, 6]]);
  tf.dispose(crops);
});

test('steps keep the tensor count flat, train the student and move the teacher towards it', () => {
  const { nets, loss, trainer, crops } = setup();
  const name = 'backbone.blocks.0.attn.qkv.weight';
  const s0 = trainer.studentParams.get(name)!.dataSync().slice();
  const t0 = trainer.teacherParams.get(name)!.dataSync().slice();
  trainer.step(crops, 0, 0);
  trainer.step(crops, 1, 0); // optimizer state exists from here on
  const count = tf.memory().numTensors;
  for (let i = 2; i < 5; i++) trainer.step(crops, i, 0);
  assert.equal(tf.memory().numTensors, count, 'no tensor leaks per step');
  const s1 = trainer.studentParams.get(name)!.dataSync();
  const t1 = trainer.teacherParams.get(name)!.dataSync();
  let ds = 0, dt = 0;
  for (let i = 0; i < s0.length; i++) {
    ds += Math.abs(s1[i]! - s0[i]!);
    dt += Math.abs(t1[i]! - t0[i]!);
  }
  assert.ok(ds > 0 && dt > 0 && dt < ds, `student moved ${ds}, teacher (EMA, momentum 0.9) ${dt}`);
  tf.dispose(crops);
  trainer.optimizer.dispose();
  loss.dispose();
  disposeNetworks(nets);
});

test('a NaN loss throws NonFiniteLossError and leaves the parameters untouched', () => {
  const { nets, loss, trainer, crops } = setup();
  const bad = crops.map((c) => tf.mul(c, NaN));
  const before = [...trainer.studentParams.values()].map((v) => v.dataSync().slice());
  const count = tf.memory().numTensors;
  assert.throws(() => trainer.step(bad, 0, 0), (e: unknown) => e instanceof NonFiniteLossError && /loss is NaN at iteration 0/.test(e.message));
  assert.equal(tf.memory().numTensors, count, 'nothing leaks on the error path');
  [...trainer.studentParams.values()].forEach((v, i) => assert.deepEqual(v.dataSync(), before[i]));
  tf.dispose([...crops, ...bad]);
  trainer.optimizer.dispose();
  loss.dispose();
  disposeNetworks(nets);
});

test('time planning: the median probe step after the warm-up, plus 5%, is robust to one outlier', () => {
  // warm-up 5 s (ignored), one 3 s hiccup, the rest ~0.2 s
  const s = plannedStepSeconds([5, 0.21, 0.19, 3, 0.2, 0.22, 0.18, 0.2]);
  assert.ok(Math.abs(s - 0.2 * 1.05) < 1e-12, `planned ${s}`);
});
