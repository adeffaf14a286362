// SSLTrainer with the DINO recipe: crops grouped by resolution, flat tensor count over steps, teacher EMA direction,
// NaN handling; and the time planner's step estimate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { resolveConfig } from '../../src/train/config_layers.js';
import { buildNetworks, disposeNetwork } from '../../src/train/networks.js';
import { frozenSchedules } from '../../src/train/plan.js';
import { plannedStepSeconds } from '../../src/train/run_loop.js';
import { NonFiniteLossError, SSLTrainer, trainerPolicies, type SSLBatch } from '../../src/train/trainer.js';
import { TINY } from './tiny.js';

await initBackend('cpu');

function setup() {
  const cfg = resolveConfig({ layers: [TINY] });
  const nets = buildNetworks(cfg);
  const c = (v: number) => ({ at: () => v });
  const trainer = new SSLTrainer({
    student: nets.student, teacher: nets.teacher, policies: { ...trainerPolicies(cfg), clipGrad: 3 },
    schedules: { ...frozenSchedules(0.04), lr: c(1e-2), lastLayerLr: c(1e-2), wd: c(0.04), momentum: c(0.9) },
  });
  trainer.syncEmaFromStudent();
  // 2 images: the global crops [g1; g2] at 8 px, the 2 local crops [l1; l2] at 4 px.
  const batch: SSLBatch = { global: tf.randomNormal([4, 3, 8, 8], 0, 1, 'float32', 0), local: tf.randomNormal([4, 3, 4, 4], 0, 1, 'float32', 1), nLocal: 2, masks: null };
  const crops = [batch.global, batch.local!];
  return { nets, trainer, batch, crops, dispose: () => [nets.student, nets.teacher].forEach(disposeNetwork) };
}

test('same-resolution crops go through the backbone together: teacher [g1; g2]; student [g1; g2], then the locals', () => {
  const { trainer, batch, crops, nets, dispose } = setup();
  const calls: string[] = [];
  for (const [who, net] of [['teacher', nets.teacher], ['student', nets.student]] as const) {
    const features = net.backbone.forwardFeatures.bind(net.backbone);
    const cls = net.backbone.forward.bind(net.backbone);
    net.backbone.forwardFeatures = (x: Tensor, masks?: Tensor | null) => {
      calls.push(`${who} ${x.shape.join('x')}${masks ? ' masked' : ''}`);
      return features(x, masks);
    };
    net.backbone.forward = (x: Tensor) => {
      calls.push(`${who} ${x.shape.join('x')}`);
      return cls(x);
    };
  }
  trainer.step(batch, 0);
  assert.deepEqual(calls, ['teacher 4x3x8x8', 'student 4x3x8x8', 'student 4x3x4x4']);
  tf.dispose(crops);
  trainer.dispose();
  dispose();
});

test('steps keep the tensor count flat, train the student and move the teacher towards it', () => {
  const { trainer, batch, crops, dispose } = setup();
  const name = 'backbone.blocks.0.attn.qkv.weight';
  const s0 = trainer.studentParams.get(name)!.dataSync().slice();
  const t0 = trainer.teacherParams.get(name)!.dataSync().slice();
  trainer.step(batch, 0);
  trainer.step(batch, 1); // optimizer state exists from here on
  const count = tf.memory().numTensors;
  for (let i = 2; i < 5; i++) trainer.step(batch, i);
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
  trainer.dispose();
  dispose();
});

test('a NaN loss throws NonFiniteLossError and leaves the parameters untouched', () => {
  const { trainer, batch, crops, dispose } = setup();
  const bad = crops.map((c) => tf.mul(c, NaN));
  const badBatch: SSLBatch = { ...batch, global: bad[0]!, local: bad[1]! };
  const before = [...trainer.studentParams.values()].map((v) => v.dataSync().slice());
  const count = tf.memory().numTensors;
  assert.throws(() => trainer.step(badBatch, 0), (e: unknown) => e instanceof NonFiniteLossError && /loss is NaN at iteration 0/.test(e.message));
  assert.equal(tf.memory().numTensors, count, 'nothing leaks on the error path');
  [...trainer.studentParams.values()].forEach((v, i) => assert.deepEqual(v.dataSync(), before[i]));
  tf.dispose([...crops, ...bad]);
  trainer.dispose();
  dispose();
});

test('time planning: the median probe step after the warm-up, plus 5%, is robust to one outlier', () => {
  // warm-up 5 s (ignored), one 3 s hiccup, the rest ~0.2 s
  const s = plannedStepSeconds([5, 0.21, 0.19, 3, 0.2, 0.22, 0.18, 0.2]);
  assert.ok(Math.abs(s - 0.2 * 1.05) < 1e-12, `planned ${s}`);
});

test('one local crop, or none, trains (a split into one piece has no TF.js gradient: it is not split)', () => {
  for (const nLocal of [1, 0]) {
    const { trainer, batch, crops, dispose } = setup();
    const local = nLocal ? tf.slice(batch.local!, [0], [2]) : null; // l1 of both images
    const r = trainer.step({ ...batch, local, nLocal }, 0);
    assert.ok(Number.isFinite(r.loss), `loss with ${nLocal} local crops: ${r.loss}`);
    tf.dispose([...crops, ...(local ? [local] : [])]);
    trainer.dispose();
    dispose();
  }
});
