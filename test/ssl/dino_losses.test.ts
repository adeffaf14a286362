import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { DINOLoss } from '../../src/ssl/dino_loss.js';
import { DINOClsTokenLoss } from '../../src/ssl/dino_clstoken_loss.js';
import { sinkhornKnopp } from '../../src/ssl/sinkhorn_knopp.js';

before(async () => {
  await initBackend('cpu');
});

const ln = Math.log;
const scalar = (t: tf.Tensor) => t.dataSync()[0]!;

function twoCropLoss(centerMomentum = 0.9) {
  // K=2, B=1, 2 crops. Student temp 0.1, teacher temp 0.5 (constant schedule).
  return new DINOLoss({ outDim: 2, ncrops: 2, warmupTeacherTemp: 0.5, teacherTemp: 0.5, warmupTeacherTempEpochs: 0, nepochs: 1, centerMomentum });
}
// student crop0 logits/0.1 = [0, 0] -> p = [1/2, 1/2]; crop1 = [ln 3, 0] -> p = [3/4, 1/4]
const student = () => tf.tensor2d([[0, 0], [0.1 * ln(3), 0]]);
// teacher crop0 / 0.5 = [0, 0] -> q = [1/2, 1/2]; crop1 = [ln 3, 0] -> q = [3/4, 1/4]
const teacher = () => tf.tensor2d([[0, 0], [0.5 * ln(3), 0]]);

test('DINO v1: 2-crop loss by hand, center updated after the loss', () => {
  const loss = twoCropLoss();
  // pairs: teacher crop0 vs student crop1, teacher crop1 vs student crop0
  const term01 = -(0.5 * ln(0.75) + 0.5 * ln(0.25));
  const term10 = -(0.75 * ln(0.5) + 0.25 * ln(0.5));
  const l = loss.forward(student(), teacher(), 0);
  assert.ok(Math.abs(scalar(l) - (term01 + term10) / 2) < 1e-6, `loss ${scalar(l)}`);
  const c = loss.center.value.dataSync();
  // center = 0.9*0 + 0.1*mean(teacher rows) = [0.1 * 0.25 * ln 3, 0]
  assert.ok(Math.abs(c[0]! - 0.025 * ln(3)) < 1e-7 && Math.abs(c[1]!) < 1e-9, `center ${c}`);

  // Second call: the teacher is centered with the new center; crop1 logits become (0.5 ln3 - c0)/0.5.
  const c0 = 0.025 * ln(3);
  const a = (0.5 * ln(3) - c0) / 0.5;
  const b = -c0 / 0.5;
  const q0 = [Math.exp(b) / (Math.exp(b) + 1), 1 / (Math.exp(b) + 1)];
  const q1 = [Math.exp(a) / (Math.exp(a) + 1), 1 / (Math.exp(a) + 1)];
  const expected = (-(q0[0]! * ln(0.75) + q0[1]! * ln(0.25)) - (q1[0]! + q1[1]!) * ln(0.5)) / 2;
  assert.ok(Math.abs(scalar(loss.forward(student(), teacher(), 0)) - expected) < 1e-6);
  loss.dispose();
});

test('DINO v1: center state saves and restores', () => {
  const a = twoCropLoss();
  a.forward(student(), teacher(), 0);
  const sd = a.stateDict();
  assert.deepEqual(sd.get('center')!.shape, [1, 2]);
  const b = twoCropLoss();
  b.loadStateDict(sd);
  assert.equal(scalar(a.forward(student(), teacher(), 0)), scalar(b.forward(student(), teacher(), 0)));
  assert.throws(() => b.loadStateDict(new Map()), /center/);
  assert.throws(() => b.forward(tf.zeros([3, 2]), tf.zeros([2, 2]), 0), /ncrops/);
  a.dispose();
  b.dispose();
});

test('DINO v1: gradient reaches the student only', () => {
  const loss = twoCropLoss();
  const t = teacher();
  const g = tf.grad((s: tf.Tensor) => loss.forward(s, t, 0))(student());
  const v = g.dataSync();
  assert.ok(v.every(Number.isFinite) && v.some((x) => Math.abs(x) > 1e-3), `grad ${v}`);
  loss.dispose();
});

test('DINOv2 CLS loss: the SSLMetaArch combination equals the v1 mean over pairs', () => {
  const B = 3, K = 16, L = 2;
  const g = tf.randomNormal([2 * B, K], 0, 1, 'float32', 1);
  const l = tf.randomNormal([L * B, K], 0, 1, 'float32', 2);
  const t = tf.randomNormal([2 * B, K], 0, 1, 'float32', 3);
  const v1 = new DINOLoss({ outDim: K, ncrops: 2 + L, warmupTeacherTemp: 0.07, teacherTemp: 0.07, warmupTeacherTempEpochs: 0, nepochs: 1 });
  const expected = scalar(v1.forward(tf.concat([g, l]), t, 0));
  const v2 = new DINOClsTokenLoss(K);
  const [t1, t2] = tf.split(t, 2);
  const probs = v2.softmaxCenterTeacher(tf.concat([t2!, t1!]), 0.07); // teacher crops swapped, as SSLMetaArch does
  const [p0, p1] = tf.split(probs, 2);
  const local = v2.forward(tf.split(l, L), [p0!, p1!]);
  const global = v2.forward([g], [probs]);
  const combined = (scalar(local) + 2 * scalar(global)) / (2 + 2 * L);
  assert.ok(Math.abs(combined - expected) < 1e-5, `${combined} vs ${expected}`);
  v1.dispose();
  v2.dispose();
});

test('DINOv2 CLS loss: center update is pending until the next teacher softmax', () => {
  const loss = new DINOClsTokenLoss(2);
  loss.updateCenter(tf.tensor2d([[1, 3], [3, 5]])); // batch mean [2, 4]
  assert.deepEqual(Array.from(loss.center.value.dataSync()), [0, 0]);
  loss.softmaxCenterTeacher(tf.zeros([1, 2]), 1);
  const c = loss.center.value.dataSync();
  assert.ok(Math.abs(c[0]! - 0.2) < 1e-6 && Math.abs(c[1]! - 0.4) < 1e-6, `center ${c}`);
  // stateDict folds a pending update in (the next softmax would do the same)
  loss.updateCenter(tf.tensor2d([[2, 4]]));
  const saved = loss.stateDict().get('center')!.data;
  assert.ok(Math.abs(Number(saved[0]) - (0.9 * 0.2 + 0.1 * 2)) < 1e-6);
  loss.dispose();
});

test('Sinkhorn-Knopp: every sample sums to 1, prototypes get about B/K each', () => {
  const B = 6, K = 4;
  const logits = tf.randomNormal([B, K], 0, 0.2, 'float32', 7);
  for (const r of sinkhornKnopp(logits, 0.1, 3).sum(1).dataSync()) assert.ok(Math.abs(r - 1) < 1e-5, `row sum ${r}`);
  // with enough iterations the prototype masses converge to B/K
  for (const c of sinkhornKnopp(logits, 0.1, 100).sum(0).dataSync()) assert.ok(Math.abs(c - B / K) < 1e-3, `prototype mass ${c} (want ${B / K})`);
  // hand case: a constant input is already balanced -> uniform 1/K
  assert.ok(sinkhornKnopp(tf.ones([3, 4]), 0.5).dataSync().every((v) => Math.abs(v - 0.25) < 1e-6));
});

test('Sinkhorn-Knopp: no max-subtraction, so exp overflow gives NaN like the official float32 code', () => {
  const q = sinkhornKnopp(tf.tensor2d([[100, 0], [0, 0]]), 0.06).dataSync();
  assert.ok(q.some(Number.isNaN), `expected NaN from exp(100/0.06) = inf, got ${q}`);
});
