// Opt-in bf16 matmul precision on the native backend: results within bf16 rounding of float32, exact where the
// operands are bf16-representable, gradients of the real ViT close to the cpu backend, and clear errors elsewhere.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { adamwStep } from '../../src/backend/adamw_kernel.js';
import { loadAddon } from '../../src/backend/native/addon.js';
import { matmulPrecision, setMatmulPrecision } from '../../src/backend/select.js';
import { nativeSkip, rand, vitNanoLossAndGrads } from './native_helpers.js';
import { namedConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';

function bf16Skip(): string | false {
  if (nativeSkip) return nativeSkip;
  try {
    loadAddon().setMatmulPrecision('bf16');
    loadAddon().setMatmulPrecision('f32');
    return false;
  } catch (e) {
    return (e as Error).message;
  }
}
const skip = bf16Skip();

after(async () => {
  if (!skip) await setMatmulPrecision('f32');
});

/** ||a - b|| / ||b|| */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / (den || 1));
}

async function matmulBoth(run: () => tf.Tensor): Promise<{ f32: Float32Array; bf16: Float32Array }> {
  await tf.setBackend('native');
  await setMatmulPrecision('f32');
  const f32 = tf.tidy(run).dataSync() as Float32Array;
  await setMatmulPrecision('bf16');
  const bf16 = tf.tidy(run).dataSync() as Float32Array;
  await setMatmulPrecision('f32');
  return { f32, bf16 };
}

test('bf16 matmul: transposes, batch broadcast, bias + GELU within bf16 rounding of f32', { skip }, async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[37, 53], [53, 29], false, false],
    [[3, 53, 37], [3, 29, 53], true, true],
    [[4, 2, 17, 64], [64, 31], false, false],
    [[1, 40, 48], [5, 48, 24], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    const a = tf.tensor(rand(sa, 1), sa), b = tf.tensor(rand(sb, 2), sb);
    const { f32, bf16 } = await matmulBoth(() => tf.matMul(a, b, ta, tb));
    const e = relErr(bf16, f32);
    // Two operands rounded to 8 significant bits: ~2^-9 relative each; random signs make the sum's error ~that size.
    assert.ok(e < 1e-2, `${sa} x ${sb}: relative error ${e}`);
    assert.ok(e > 1e-6, `${sa} x ${sb}: bf16 gave the f32 result exactly (error ${e}): the bf16 path did not run`);
    tf.dispose([a, b]);
  }
  const x = tf.tensor(rand([64, 96], 3), [64, 96]), w = tf.tensor(rand([96, 80], 4), [96, 80]), bias = tf.tensor(rand([80], 5), [80]);
  const { f32, bf16 } = await matmulBoth(() => tf.fused.matMul({ a: x, b: w, bias, activation: 'relu' }));
  assert.ok(relErr(bf16, f32) < 1e-2, `fused matmul: relative error ${relErr(bf16, f32)}`);
  tf.dispose([x, w, bias]);
});

test('bf16 matmul is exact on bf16-representable operands (small integers)', { skip }, async () => {
  const ints = (shape: number[], seed: number) => rand(shape, seed, -8, 8).map(Math.round);
  const a = tf.tensor(ints([33, 70], 6), [33, 70]), b = tf.tensor(ints([70, 45], 7), [70, 45]);
  const { f32, bf16 } = await matmulBoth(() => tf.matMul(a, b));
  assert.deepEqual(Array.from(bf16), Array.from(f32));
  tf.dispose([a, b]);
});

test('ViT nano in bf16: loss and gradients stay close to the float32 cpu backend', { skip }, async () => {
  const ref = await vitNanoLossAndGrads('cpu');
  await tf.setBackend('native');
  await setMatmulPrecision('bf16');
  const got = await vitNanoLossAndGrads('native');
  await setMatmulPrecision('f32');
  assert.ok(Math.abs(got.loss - ref.loss) <= 2e-2 * Math.abs(ref.loss) + 1e-2, `loss ${got.loss} vs ${ref.loss}`);
  const errs = ref.grads.map((g, i) => relErr(got.grads[i]!, g));
  assert.ok(Math.max(...errs) < 0.1, `worst parameter gradient relative error ${Math.max(...errs)}`);
  assert.ok(errs.reduce((s, e) => s + e, 0) / errs.length < 0.03, `mean gradient relative error ${errs}`);
});

/** a [M, K] · b [K, N] in plain JS (float64 sums). */
function refMatmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float32Array {
  const out = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k]! * b[k * N + j]!;
      out[i * N + j] = s;
    }
  }
  return out;
}

test('bf16 operand cache: reused, and never stale after the pool recycles a buffer or AdamW updates in place', { skip }, async () => {
  await tf.setBackend('native');
  await setMatmulPrecision('bf16'); // (switching precision empties the cache, so the references below are plain JS)
  const addon = loadAddon();
  const backend = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
  const buffer = (t: tf.Tensor) => backend.data.get(t.dataId).values;
  const [M, K, N] = [300, 256, 260]; // operands above the cache's 64K-value minimum
  const wv = rand([K, N], 12), w = tf.tensor(wv, [K, N]);
  // Kernel outputs live in pool buffers, which the cache may keep (a negation keeps the values exact).
  const v1 = rand([M, K], 13), v2 = rand([M, K], 14);
  const in1 = tf.tensor(v1, [M, K]), in2 = tf.tensor(v2, [M, K]);
  const a1 = tf.neg(in1);
  const y1 = tf.matMul(a1, w).dataSync().slice();
  assert.ok(addon.bf16CacheStats().entries >= 1, 'the pooled operand was cached');
  assert.deepEqual(Array.from(tf.matMul(a1, w).dataSync()), Array.from(y1), 'a cached operand gives the same product');
  const old = buffer(a1);
  a1.dispose();
  // The same size again: the pool hands the same buffer back, now holding other values.
  const a2 = tf.neg(in2);
  assert.equal(buffer(a2), old, 'test setup: the pool reused the buffer');
  const got = tf.matMul(a2, w).dataSync();
  const want = refMatmul(v2.map((x) => -x), wv, M, K, N);
  assert.ok(relErr(got, want) < 1e-2, `recycled buffer: relative error ${relErr(got, want)} (stale bf16 copy?)`);
  // AdamW writes a parameter in place (its own pooled buffer): its next product must use the new values.
  const init = tf.neg(in1);
  const p = tf.variable(init);
  init.dispose();
  const mState = tf.variable(tf.zerosLike(p)), vState = tf.variable(tf.zerosLike(p)), g = tf.onesLike(p);
  const before = buffer(p);
  tf.matMul(p, w).dispose();
  const entries = addon.bf16CacheStats().entries;
  adamwStep([p], [g], [mState], [vState], 0.5, 0, 0.9, 0.999, 1e-8, 1); // grad 1: every value drops by lr = 0.5
  assert.equal(buffer(p), before, 'test setup: AdamW updated the buffer in place');
  assert.equal(addon.bf16CacheStats().entries, entries - 1, 'AdamW dropped the parameter\'s copy');
  const gotP = tf.matMul(p, w).dataSync();
  const wantP = refMatmul(v1.map((x) => -x - 0.5), wv, M, K, N);
  assert.ok(relErr(gotP, wantP) < 1e-2, `after AdamW: relative error ${relErr(gotP, wantP)} (stale bf16 copy?)`);
  await setMatmulPrecision('f32');
  assert.equal(addon.bf16CacheStats().entries, 0, 'switching precision empties the cache');
  tf.dispose([w, in1, in2, a2, p, mState, vState, g]);
});

/** Losses of a few AdamW steps of a seeded ViT nano in bf16, its final parameters, and the most bf16 cache entries. */
function bf16TrainingRun(steps: number): { losses: number[]; params: Float32Array[]; peakEntries: number } {
  const addon = loadAddon();
  let peakEntries = 0;
  const c = namedConfig('vit_nano_p4_28');
  const model = new VisionTransformer(c, { seed: 5 });
  model.train();
  const params = [...model.trainableParameters().values()];
  const m = params.map((p) => tf.variable(tf.zerosLike(p), false)), v = params.map((p) => tf.variable(tf.zerosLike(p), false));
  const losses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const x = tf.tensor(rand([16, 3, 28, 28], 20 + s), [16, 3, 28, 28]), r = tf.tensor(rand([16, 96], 40 + s), [16, 96]);
    const { value, grads } = tf.variableGrads(() => {
      const y = model.forward(x);
      peakEntries = Math.max(peakEntries, addon.bf16CacheStats().entries); // activations rounded for the backward
      return tf.sum(tf.mul(y, r)) as tf.Scalar;
    }, params);
    losses.push(value.dataSync()[0]!);
    adamwStep(params, params.map((p) => grads[p.name]!), m, v, 1e-3, 0.04, 0.9, 0.999, 1e-8, s);
    tf.dispose([x, r, value, ...Object.values(grads)]);
  }
  const out = { losses, params: params.map((p) => (p.dataSync() as Float32Array).slice()), peakEntries };
  tf.dispose([...m, ...v]);
  model.dispose();
  return out;
}

test('bf16 operand cache changes no bit of a training run (losses and parameters after AdamW steps)', { skip }, async () => {
  await tf.setBackend('native');
  await setMatmulPrecision('bf16');
  const addon = loadAddon();
  try {
    const cached = bf16TrainingRun(4);
    assert.ok(cached.peakEntries > 0, 'the run used the cache');
    assert.equal(addon.bf16CacheStats().entries, 0, 'disposing the run released its entries');
    addon.setBf16CacheMB(0);
    const uncached = bf16TrainingRun(4);
    assert.equal(uncached.peakEntries, 0);
    assert.deepEqual(cached.losses, uncached.losses);
    cached.params.forEach((p, i) => assert.deepEqual(p, uncached.params[i], `parameter ${i}`));
  } finally {
    addon.setBf16CacheMB(512);
    await setMatmulPrecision('f32');
  }
});

test('bf16 precision: clear errors for an unknown mode and for non-native backends', { skip: nativeSkip }, async () => {
  await assert.rejects(setMatmulPrecision('fp8' as 'f32'), /unknown precision 'fp8'/);
  await tf.setBackend('cpu');
  await assert.rejects(setMatmulPrecision('bf16'), /bf16 matmul needs the native backend/);
  assert.equal(matmulPrecision(), 'f32');
  await tf.setBackend('native');
});
