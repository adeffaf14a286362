// linear (one _FusedMatMul with bias) and multiHeadAttention (the fused qkv kernel on native) against the plain
// composites, forward and gradients, on cpu and native.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { linear, multiHeadAttention, scaledDotProductAttention } from '../../src/nn/functional.js';
import { fusedQkvAttention } from '../../src/backend/fused.js';
import { variableGrads } from '../../src/backend/grads.js';
import { compareBackends, nativeSkip, rand } from './native_helpers.js';

const skip = nativeSkip;

// matMul + add: what linear computed before it used tf.fused.matMul.
const linearRef = (x: Tensor, w: Tensor, b: Tensor) =>
  tf.add(tf.matMul(x.reshape([-1, w.shape[1]!]), w, false, true), b).reshape([...x.shape.slice(0, -1), w.shape[0]!]);

// The official head split: reshape (B, T, 3, H, hd), permute to (3, B, H, T, hd), attention, heads back side by side.
function mhaRef(qkv: Tensor, H: number, scale: number): { out: Tensor; probs: Tensor } {
  const [B, T, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3;
  const [q, k, v] = tf.unstack(qkv.reshape([B, T, 3, H, D / H]).transpose([2, 0, 3, 1, 4]), 0) as Tensor[];
  const probs = tf.softmax(tf.mul(tf.matMul(q!, k!, false, true), scale));
  return { out: tf.matMul(probs, v!).transpose([0, 2, 1, 3]).reshape([B, T, D]), probs };
}

test('linear with fused bias: values and gradients equal matMul + add (cpu)', async () => {
  await tf.setBackend('cpu');
  const x = tf.tensor(rand([2, 5, 7], 1), [2, 5, 7]), w = tf.tensor(rand([3, 7], 2), [3, 7]), b = tf.tensor(rand([3], 3), [3]);
  const dy = tf.tensor(rand([2, 5, 3], 4), [2, 5, 3]);
  const got = tf.grads((x: Tensor, w: Tensor, b: Tensor) => linear(x, w, b))([x, w, b], dy);
  const want = tf.grads(linearRef)([x, w, b], dy);
  const maxDiff = (a: Tensor, c: Tensor) => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]!;
  assert.ok(maxDiff(linear(x, w, b), linearRef(x, w, b)) < 1e-5);
  got.forEach((g, i) => assert.ok(maxDiff(g, want[i]!) < 1e-5, `gradient of input ${i}`));
  // Hand check: x=[1,2], w=[[3,4]], b=[5] → 1·3 + 2·4 + 5 = 16; without bias 11.
  assert.deepEqual([...linear(tf.tensor([[1, 2]]), tf.tensor([[3, 4]]), tf.tensor([5])).dataSync()], [16]);
  assert.deepEqual([...linear(tf.tensor([[1, 2]]), tf.tensor([[3, 4]])).dataSync()], [11]);
});

test('linear: native equals cpu, forward and gradients, with and without bias', { skip }, async () => {
  await compareBackends('linear', (x, w, b) => linear(x!, w!, b!), [[2, 9, 33], [17, 33], [17]], { grad: true });
  await compareBackends('linear no bias', (x, w) => linear(x!, w!), [[9, 33], [17, 33]], { grad: true });
});

test('multiHeadAttention equals the official head split on cpu, and native equals cpu (with gradients)', { skip }, async () => {
  await tf.setBackend('cpu');
  const qkv = tf.tensor(rand([2, 5, 24], 7), [2, 5, 24]);
  const ref = mhaRef(qkv, 2, 0.4), got = multiHeadAttention(qkv, 2, 0.4, { returnProbs: true });
  assert.deepEqual(got.out.shape, [2, 5, 8]);
  assert.deepEqual([...got.out.dataSync()], [...ref.out.dataSync()]);
  assert.deepEqual([...got.probs.dataSync()], [...ref.probs.dataSync()]);
  await compareBackends('mha', (x) => multiHeadAttention(x!, 3, 0.3), [[2, 7, 36]], { grad: true });
  // A loss on the probabilities too: their gradient must reach qkv.
  await compareBackends('mha+probs', (x) => {
    const r = multiHeadAttention(x!, 2, 0.5, { returnProbs: true });
    return tf.add(tf.sum(tf.mul(r.out, r.out)), tf.sum(tf.square(r.probs)));
  }, [[3, 6, 24]], { grad: true });
  // ViT-S/16 shapes (H=6, hd=64, T=197), and the kernel really runs on native.
  await compareBackends('mha vit-s', (x) => multiHeadAttention(x!, 6, 0.125), [[2, 197, 1152]], { grad: true, range: [-1, 1] });
  await tf.setBackend('native');
  assert.ok(fusedQkvAttention(tf.zeros([1, 4, 12]), 2, 1, false), 'fused qkv attention declined on native');
  // The composite over scaledDotProductAttention still agrees with the fused kernel.
  const x = tf.tensor(rand([1, 4, 12], 5), [1, 4, 12]);
  const [q, k, v] = tf.unstack(x.reshape([1, 4, 3, 2, 2]).transpose([2, 0, 3, 1, 4]), 0) as Tensor[];
  const viaSdpa = scaledDotProductAttention(q!, k!, v!, 0.7).transpose([0, 2, 1, 3]).reshape([1, 4, 4]);
  const a = multiHeadAttention(x, 2, 0.7).dataSync(), e = viaSdpa.dataSync();
  a.forEach((val, i) => assert.ok(Math.abs(val - e[i]!) < 1e-5, `element ${i}: ${val} vs ${e[i]}`));
});

test('multiHeadAttention rejects a qkv width that is not 3·heads·hd', async () => {
  await tf.setBackend('cpu');
  assert.throws(() => multiHeadAttention(tf.zeros([1, 2, 10]), 2, 1), /must be \[B, T, 3·D\]/);
});

test('attention backward on native fills no zero gradients for the outputs that only feed the gradient', { skip }, async () => {
  // Recorded as a multi-output kernel, the fused attention made TF.js allocate a zero gradient for its saved
  // probabilities and heads on every backward pass (22 MB a ViT-S/16 layer): it must record one output instead.
  await tf.setBackend('native');
  const engine = tf.engine() as unknown as { makeTensor: (...a: unknown[]) => Tensor };
  const qkv = tf.tensor(rand([2, 9, 24], 5), [2, 9, 24]);
  const q = qkv.slice([0, 0, 0], [2, 9, 8]), k = qkv.slice([0, 0, 8], [2, 9, 8]), v = qkv.slice([0, 0, 16], [2, 9, 8]);
  const zeroFills = (f: () => void) => {
    const make = engine.makeTensor;
    let n = 0;
    engine.makeTensor = function (this: unknown, ...a: unknown[]) {
      const vals = a[0];
      if (vals instanceof Float32Array && vals.length > 1 && vals.every((x) => x === 0)) n++;
      return make.apply(this, a);
    };
    try {
      tf.tidy(f);
    } finally {
      engine.makeTensor = make;
    }
    return n;
  };
  assert.equal(zeroFills(() => { tf.grad((t: Tensor) => multiHeadAttention(t, 2, 0.5).sum())(qkv); }), 0);
  assert.equal(zeroFills(() => { tf.grads((a: Tensor, b: Tensor, c: Tensor) => scaledDotProductAttention(a, b, c, 0.5).sum())([q, k, v]); }), 0);
});

test('attention of q, k, v made inside a tidy: the backward pass still has them (native)', { skip }, async () => {
  // The caller's tidy disposes q, k and v once the forward pass returns; the gradient must have kept its own handles.
  await tf.setBackend('native');
  const w = tf.variable(tf.tensor(rand([2, 9, 8], 9), [2, 9, 8]), true, 'attn_tidy_w');
  const loss = () => tf.tidy(() => scaledDotProductAttention(tf.mul(w, 2), tf.mul(w, 3), tf.mul(w, 4), 0.5).sum() as tf.Scalar);
  const { value, grads } = variableGrads(loss, [w]);
  const want = tf.variableGrads(() => tf.tidy(() => {
    const [q, k, v] = [tf.mul(w, 2), tf.mul(w, 3), tf.mul(w, 4)];
    return tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), 0.5)), v).sum() as tf.Scalar;
  }), [w]);
  const diff = tf.max(tf.abs(tf.sub(grads.attn_tidy_w!, want.grads.attn_tidy_w!))).dataSync()[0]!;
  assert.ok(diff < 1e-4, `gradient differs from the composite by ${diff}`);
  tf.dispose([value, want.value, ...Object.values(grads), ...Object.values(want.grads)].filter((t): t is Tensor => t !== null));
  w.dispose();
});

test('multiHeadAttention with no gradient recorded runs the inference kernel and equals the recorded path (native)', { skip }, async () => {
  await tf.setBackend('native');
  const qkv = tf.tensor(rand([2, 197, 1152], 13, -1, 1), [2, 197, 1152]);
  const p = await tf.profile(() => multiHeadAttention(qkv, 6, 0.125, { returnProbs: true }));
  assert.ok(p.kernels.some((k) => k.name === 'DinotsQkvAttentionInference'), 'the inference kernel did not run');
  const inference = multiHeadAttention(qkv, 6, 0.125, { returnProbs: true });
  assert.deepEqual(inference.out.shape, [2, 197, 384]);
  assert.deepEqual(inference.probs.shape, [2, 6, 197, 197]);
  // The same values while a gradient is recorded (the transposing training kernel), with and without probabilities.
  let recorded: { out: Tensor; probs: Tensor } | null = null;
  let recordedOut: Tensor | null = null;
  tf.grad((x: Tensor) => {
    const r = multiHeadAttention(x, 6, 0.125, { returnProbs: true });
    recorded = { out: tf.keep(r.out), probs: tf.keep(r.probs) };
    recordedOut = tf.keep(multiHeadAttention(x, 6, 0.125));
    return tf.add(tf.sum(r.out), tf.sum(recordedOut));
  })(qkv);
  const maxDiff = (a: Tensor, b: Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
  assert.ok(maxDiff(inference.out, recorded!.out) < 1e-5);
  assert.ok(maxDiff(inference.probs, recorded!.probs) < 1e-6);
  assert.ok(maxDiff(multiHeadAttention(qkv, 6, 0.125), recordedOut!) < 1e-5);
  // And the official head split on cpu.
  const ref = mhaRef(qkv, 6, 0.125);
  assert.ok(maxDiff(inference.out, ref.out) < 1e-5);
});
