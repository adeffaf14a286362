// The fused native kernels (LayerNorm, GELU, attention) and the fused AdamW against the composite TF.js ops on cpu.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { fusedAttention, fusedGelu, fusedLayerNorm, fusedLinearGelu } from '../../src/backend/fused.js';
import { linearGelu } from '../../src/nn/functional.js';
import { adamwStep } from '../../src/backend/adamw_kernel.js';
import { compareBackends, nativeSkip, rand } from './native_helpers.js';

const skip = nativeSkip;

// The composite definitions (what every other backend computes).
function layerNormRef(x: Tensor, g: Tensor, b: Tensor, eps: number): Tensor {
  const mean = tf.mean(x, -1, true);
  const c = tf.sub(x, mean);
  return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), eps))), g), b);
}
const geluRef = (x: Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
const attnRef = (q: Tensor, k: Tensor, v: Tensor, s: number) => tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), s)), v);

/** Fused on native, composite on cpu. */
const either = <T extends unknown[]>(fused: (...a: T) => Tensor | null, ref: (...a: T) => Tensor) =>
  (...a: T): Tensor => (tf.getBackend() === 'native' ? fused(...a)! : ref(...a));

test('fused LayerNorm matches the composite, forward and gradients', { skip }, async () => {
  const ln = either((x: Tensor, g: Tensor, b: Tensor) => fusedLayerNorm(x, g, b, 1e-6), (x, g, b) => layerNormRef(x, g, b, 1e-6));
  await compareBackends('layerNorm', (x, g, b) => ln(x!, g!, b!), [[3, 7, 37], [37], [37]], { grad: true });
  await compareBackends('layerNorm big', (x, g, b) => ln(x!, g!, b!), [[8, 197, 384], [384], [384]], { grad: true, atol: 1e-4 });
});

test('fused GELU matches the composite, forward and gradient', { skip }, async () => {
  const gelu = either((x: Tensor) => fusedGelu(x), geluRef);
  await compareBackends('gelu', (x) => gelu(x!), [[5, 77]], { grad: true, range: [-5, 5] });
  await compareBackends('gelu big', (x) => gelu(x!), [[40000]], { grad: true });
});

test('fused attention matches the composite, forward and gradients (also with probabilities)', { skip }, async () => {
  const attn = either((q: Tensor, k: Tensor, v: Tensor) => fusedAttention(q, k, v, 0.3, false)!.out, (q, k, v) => attnRef(q, k, v, 0.3));
  await compareBackends('attention', (q, k, v) => attn(q!, k!, v!), [[2, 3, 9, 8], [2, 3, 11, 8], [2, 3, 11, 5]], { grad: true });
  // A loss that uses the probabilities too: their gradient must reach q and k.
  const withProbs = either(
    (q: Tensor, k: Tensor, v: Tensor) => { const r = fusedAttention(q, k, v, 0.5, true)!; return tf.add(tf.sum(r.out), tf.sum(tf.square(r.probs!))); },
    (q, k, v) => { const p = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 0.5)); return tf.add(tf.sum(tf.matMul(p, v)), tf.sum(tf.square(p))); },
  );
  await compareBackends('attention+probs', (q, k, v) => withProbs(q!, k!, v!), [[2, 6, 4], [2, 6, 4], [2, 6, 4]], { grad: true });
});

test('linear + GELU: one fused matmul when inferring, the composite (and its gradient) under a tape', { skip }, async () => {
  const ref = (x: Tensor, w: Tensor, b: Tensor) =>
    geluRef(tf.add(tf.matMul(x.reshape([-1, x.shape[2]!]), w, false, true), b)).reshape([...x.shape.slice(0, 2), w.shape[0]!]);
  await tf.setBackend('native');
  const [x, w, b] = [[3, 9, 37], [50, 37], [50]].map((s, i) => tf.tensor(rand(s, i + 11), s));
  assert.ok(fusedLinearGelu(x!, w!, b!), 'fused path taken outside a gradient');
  tf.grad((xx: Tensor) => {
    assert.equal(fusedLinearGelu(xx, w!, b!), null, 'no fused path while a gradient is recorded');
    return tf.sum(xx);
  })(x!);
  tf.dispose([x!, w!, b!]);
  await compareBackends('linearGelu', (x, w, b) => (tf.getBackend() === 'native' ? linearGelu(x!, w!, b!) : ref(x!, w!, b!)),
    [[3, 9, 37], [50, 37], [50]], { atol: 1e-4 });
  await compareBackends('linearGelu grad', (x, w, b) => (tf.getBackend() === 'native' ? linearGelu(x!, w!, b!) : ref(x!, w!, b!)),
    [[3, 9, 37], [50, 37], [50]], { grad: true, atol: 1e-4 });
});

test('fused entry points return null off the native backend', async () => {
  await tf.setBackend('cpu');
  const x = tf.ones([2, 4]);
  assert.equal(fusedGelu(x), null);
  assert.equal(fusedLayerNorm(x, tf.ones([4]), tf.zeros([4]), 1e-5), null);
  assert.equal(fusedAttention(x, x, x, 1, false), null);
  assert.equal(fusedLinearGelu(x, tf.ones([3, 4]), null), null);
});

test('adamwStep: native in-place update equals the composite, and leaves clones alone', { skip }, async () => {
  const shapes = [[5, 3], [7], [1000]];
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const ps = shapes.map((s, i) => tf.variable(tf.tensor(rand(s, i + 1), s)));
    const ms = shapes.map((s) => tf.variable(tf.zeros(s)));
    const vs = shapes.map((s) => tf.variable(tf.zeros(s)));
    const clone = tf.clone(ps[0]!); // shares the buffer until the update copies it
    const before = clone.dataSync().slice();
    for (let step = 1; step <= 3; step++) {
      const gs = shapes.map((s, i) => tf.tensor(rand(s, 10 * step + i), s));
      adamwStep(ps, gs, ms, vs, 1e-2, 0.05, 0.9, 0.999, 1e-8, step, { gradScale: 0.5 });
      tf.dispose(gs);
    }
    assert.deepEqual(clone.dataSync(), before, `${backend}: a clone of a parameter changed`);
    const out = [...ps, ...ms, ...vs].map((t) => t.dataSync().slice());
    tf.dispose([...ps, ...ms, ...vs, clone]);
    return out;
  };
  const ref = await run('cpu');
  const got = await run('native');
  ref.forEach((r, i) => r.forEach((e, j) => assert.ok(Math.abs(got[i]![j]! - e) <= 1e-6 + 1e-5 * Math.abs(e), `tensor ${i}[${j}]: ${got[i]![j]} vs ${e}`)));
  // Hand check of the first step for one element: p=1, g=2, lr=0.1, wd=0.5 → p·(1-0.05) − 0.1·(0.2/0.1)/(√0.004/√0.001 + 0) = 0.95 − 0.1
  const p = tf.variable(tf.tensor([1])), m = tf.variable(tf.tensor([0])), v = tf.variable(tf.tensor([0]));
  adamwStep([p], [tf.tensor([2])], [m], [v], 0.1, 0.5, 0.9, 0.999, 0, 1);
  assert.ok(Math.abs(p.dataSync()[0]! - 0.85) < 1e-6, `hand-checked step gave ${p.dataSync()[0]}`);
});
