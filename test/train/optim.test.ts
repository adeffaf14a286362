// AdamW, clipping and EMA against hand-computed values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { AdamW, dinoParamGroups } from '../../src/train/optim.js';
import { cancelLastLayerGradients, clipGlobalNorm, clipPerParam } from '../../src/train/clip.js';
import { emaUpdate } from '../../src/train/ema.js';

await initBackend('cpu');

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('param groups: no decay on biases and 1-D params, tokens are decayed, frozen params left out', () => {
  const params = new Map([
    ['cls_token', tf.variable(tf.zeros([1, 1, 4]))],
    ['fc.weight', tf.variable(tf.zeros([3, 4]))],
    ['fc.bias', tf.variable(tf.zeros([3]))],
    ['norm.weight', tf.variable(tf.zeros([4]))],
    ['last_layer.weight_g', tf.variable(tf.ones([3, 1]), false)],
  ]);
  const groups = dinoParamGroups(params);
  assert.deepEqual(groups[0]!.params, ['cls_token', 'fc.weight']);
  assert.deepEqual(groups[1]!.params, ['fc.bias', 'norm.weight']);
  assert.equal(groups[1]!.wdMult, 0);
});

test('AdamW: two steps equal the hand-computed torch AdamW values', () => {
  const w = tf.variable(tf.tensor1d([1.0, -2.0]));
  const b = tf.variable(tf.tensor1d([0.5]));
  const params = new Map([['w2d', w], ['b.bias', b]]);
  const opt = new AdamW(params, [
    { name: 'decay', params: ['w2d'], lrMult: 1, wdMult: 1 },
    { name: 'nodecay', params: ['b.bias'], lrMult: 1, wdMult: 0 },
  ]);
  const lr = 0.1, wd = 0.5, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  // Hand computation of torch.optim.AdamW for w = 1, grads 0.2 then -0.4.
  let p = 1, m = 0, v = 0;
  const expected: number[] = [];
  for (const [t, g] of [[1, 0.2], [2, -0.4]] as const) {
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= (lr / (1 - b1 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
    expected.push(p);
  }
  assert.ok(Math.abs(expected[0]! - (0.95 - 0.1 * (0.2 / (0.2 + 1e-8)))) < 1e-7, 'first step is ~lr·sign(g) after decay');
  opt.step(new Map([['w2d', tf.tensor1d([0.2, 0.0])], ['b.bias', tf.tensor1d([1.0])]]), lr, wd);
  close(w.dataSync(), [expected[0]!, -2 * 0.95]);
  close(b.dataSync(), [0.5 - 0.1]); // no decay on the bias group
  // Second step: only w gets a gradient; b is skipped (no decay, step count stays 1).
  opt.step(new Map([['w2d', tf.tensor1d([-0.4, 0.0])]]), lr, wd);
  close(w.dataSync(), [expected[1]!, -2 * 0.95 * 0.95]);
  close(b.dataSync(), [0.4]);
  assert.equal(opt.stepOf('w2d'), 2);
  assert.equal(opt.stepOf('b.bias'), 1);
});

test('AdamW state round-trips through stateDict/loadStateDict', () => {
  const mk = () => new Map([['w', tf.variable(tf.tensor2d([[1, 2]]))]]);
  const pa = mk(), pb = mk();
  const groups = [{ name: 'g', params: ['w'], lrMult: 1, wdMult: 1 }];
  const a = new AdamW(pa, groups);
  const b = new AdamW(pb, groups);
  a.step(new Map([['w', tf.tensor2d([[0.3, -0.1]])]]), 0.01, 0.1);
  b.step(new Map([['w', tf.tensor2d([[0.3, -0.1]])]]), 0.01, 0.1);
  const restored = new AdamW(pb, groups);
  restored.loadStateDict(a.stateDict());
  a.step(new Map([['w', tf.tensor2d([[0.7, 0.2]])]]), 0.01, 0.1);
  restored.step(new Map([['w', tf.tensor2d([[0.7, 0.2]])]]), 0.01, 0.1);
  close(pb.get('w')!.dataSync(), Array.from(pa.get('w')!.dataSync()), 0);
});

test('per-parameter clipping scales only gradients whose norm exceeds the limit', () => {
  const grads = new Map([['big', tf.tensor1d([3, 4])], ['small', tf.tensor1d([0.3, 0.4])]]);
  const out = clipPerParam(grads, 1.0);
  close(out.get('big')!.dataSync(), [3 / (5 + 1e-6), 4 / (5 + 1e-6)]);
  close(out.get('small')!.dataSync(), [Math.fround(0.3), Math.fround(0.4)], 0);
});

test('global-norm clipping scales all gradients together', () => {
  const grads = new Map([['a', tf.tensor1d([3, 0])], ['b', tf.tensor1d([0, 4])]]);
  const { grads: out, totalNorm } = clipGlobalNorm(grads, 1.0);
  close(totalNorm.dataSync(), [5]);
  close(out.get('a')!.dataSync(), [3 / (5 + 1e-6), 0]);
  close(out.get('b')!.dataSync(), [0, 4 / (5 + 1e-6)]);
});

test('freeze last layer drops last_layer gradients only while epoch < freeze_last_layer', () => {
  const mk = () => new Map([['head.last_layer.weight_v', tf.ones([2])], ['head.mlp.0.weight', tf.ones([2])]]);
  const g0 = mk();
  cancelLastLayerGradients(g0, 0, 1);
  assert.deepEqual([...g0.keys()], ['head.mlp.0.weight']);
  const g1 = mk();
  cancelLastLayerGradients(g1, 1, 1);
  assert.equal(g1.size, 2);
});

test('EMA: teacher = m·teacher + (1-m)·student', () => {
  const teacher = new Map([['w', tf.variable(tf.tensor1d([1, 2]))]]);
  const student = new Map([['w', tf.variable(tf.tensor1d([3, -2]))]]);
  emaUpdate(teacher, student, 0.9);
  close(teacher.get('w')!.dataSync(), [0.9 * 1 + 0.1 * 3, 0.9 * 2 - 0.1 * 2]);
});
