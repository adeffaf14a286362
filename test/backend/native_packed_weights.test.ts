// Pre-packed Linear weights (native/src/packed_weights.cc): packed on their second use unchanged, the same values as
// the unpacked product, and never stale: dropped when AdamW updates them, when the pool gets the buffer back and
// when the array escapes to user code. Weights the backend does not own alone are never packed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { loadAddon } from '../../src/backend/native/addon.js';
import { cacheable } from '../../src/backend/native/buffer_pool.js';
import { adamwStep } from '../../src/backend/adamw_kernel.js';
import { backendCopy, hostCopy } from '../../src/backend/storage.js';
import { linear } from '../../src/nn/functional.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { namedConfig } from '../../src/models/config.js';
import { nativeSkip, rand } from './native_helpers.js';

const skip = nativeSkip;
const [M, K, N] = [40, 384, 96]; // K·N = 36864 values: above the packing threshold

const values = (t: Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(t.dataId).values;

function maxRelErr(got: Float32Array | number[], want: Float32Array | number[]): number {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return err / scale;
}

/** x·wᵀ on the cpu backend: the reference. */
async function reference(x: Float32Array, w: Float32Array): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const y = tf.matMul(tf.tensor(x, [M, K]), tf.tensor(w, [N, K]), false, true);
  const out = (y.dataSync() as Float32Array).slice();
  await tf.setBackend('native');
  return out;
}

test('backend-owned Linear weights are packed on their second use, with the unpacked values', { skip }, async () => {
  await tf.setBackend('native');
  const addon = loadAddon();
  addon.setPackCacheMB(512);
  const xv = rand([M, K], 1), wv = rand([N, K], 2);
  const x = tf.tensor(xv, [M, K]), host = tf.tensor(wv, [N, K]), w = backendCopy(host);
  assert.ok(cacheable(values(w)) && !cacheable(values(host)), 'backendCopy owns its buffer, tf.tensor does not');
  const want = await reference(xv, wv);
  const first = linear(x, w).dataSync() as Float32Array;
  assert.deepEqual(addon.packCacheStats(), { entries: 1, packed: 0, bytes: 0 }, 'first use: seen, not packed');
  const second = linear(x, w).dataSync() as Float32Array;
  const stats = addon.packCacheStats();
  assert.equal(stats.packed, 1, 'second use: packed');
  assert.ok(stats.bytes >= N * K * 4);
  assert.ok(maxRelErr(first, want) < 1e-5 && maxRelErr(second, want) < 1e-5, 'packed and unpacked agree with cpu');
  // A tensor over the user's array is never packed: the user may refill it.
  linear(x, host).dispose();
  linear(x, host).dispose();
  assert.equal(addon.packCacheStats().entries, 1);
  // Budget 0 turns packing off (and empties the cache).
  addon.setPackCacheMB(0);
  assert.deepEqual(addon.packCacheStats(), { entries: 0, packed: 0, bytes: 0 });
  linear(x, w).dispose();
  linear(x, w).dispose();
  assert.equal(addon.packCacheStats().entries, 0);
  addon.setPackCacheMB(512);
  tf.dispose([x, host, w]);
});

test('packed weights are never stale: AdamW in place, buffer reuse, escape to user code', { skip }, async () => {
  await tf.setBackend('native');
  const addon = loadAddon();
  addon.setPackCacheMB(512);
  const xv = rand([M, K], 3), wv = rand([N, K], 4);
  const x = tf.tensor(xv, [M, K]);
  const init = tf.tensor(wv, [N, K]), owned = backendCopy(init);
  const p = tf.variable(owned);
  tf.dispose([init, owned]);
  const pack = () => { linear(x, p).dispose(); linear(x, p).dispose(); };
  pack();
  assert.equal(addon.packCacheStats().packed, 1);

  // AdamW writes the parameter in place: grad 1 lowers every value by lr = 0.5, and the next product sees it.
  const mState = tf.variable(tf.zerosLike(p)), vState = tf.variable(tf.zerosLike(p)), g = tf.onesLike(p);
  const buffer = values(p);
  adamwStep([p], [g], [mState], [vState], 0.5, 0, 0.9, 0.999, 1e-8, 1);
  assert.equal(values(p), buffer, 'test setup: AdamW updated the buffer in place');
  assert.equal(addon.packCacheStats().entries, 0, 'AdamW dropped the packed copy');
  pack();
  const afterAdam = linear(x, p).dataSync() as Float32Array;
  assert.ok(maxRelErr(afterAdam, await reference(xv, wv.map((v) => v - 0.5))) < 1e-5, 'product after AdamW');

  // Disposed: the entry goes, and the pool hands the same buffer out again for other weights.
  const address = values(p).buffer;
  tf.dispose([mState, vState, g]);
  p.dispose(); // last: the pool hands out the most recently freed buffer of a size first
  assert.equal(addon.packCacheStats().entries, 0, 'disposing the weights released their entry');
  const wv2 = rand([N, K], 5), init2 = tf.tensor(wv2, [N, K]), w2 = backendCopy(init2);
  assert.equal(values(w2).buffer, address, 'test setup: the pool reused the buffer');
  linear(x, w2).dispose();
  const reused = linear(x, w2).dataSync() as Float32Array;
  assert.equal(addon.packCacheStats().packed, 1);
  assert.ok(maxRelErr(reused, await reference(xv, wv2)) < 1e-5, 'product on the reused buffer');

  // dataSync hands the array to user code, which may write it: the packed copy goes and is never made again.
  const escaped = w2.dataSync() as Float32Array;
  assert.equal(addon.packCacheStats().entries, 0, 'escaping dropped the packed copy');
  escaped.fill(0.25);
  linear(x, w2).dispose();
  const afterWrite = linear(x, w2).dataSync() as Float32Array;
  assert.equal(addon.packCacheStats().entries, 0);
  const rowSums = Array.from({ length: M }, (_, i) => xv.subarray(i * K, (i + 1) * K).reduce((s, v) => s + v, 0) * 0.25);
  assert.ok(maxRelErr(afterWrite, rowSums.flatMap((s) => new Array<number>(N).fill(s))) < 1e-5, 'user write seen');
  tf.dispose([x, init2, w2]);
});

test('model parameters live in backend-owned buffers; stateDict and loadStateDict keep them so', { skip }, async () => {
  await tf.setBackend('native');
  const model = new VisionTransformer(namedConfig('vit_nano_p4_28'), { seed: 1 });
  const big = [...model.parameters().values()].filter((v) => v.size >= 4096); // smaller ones are not pooled
  assert.ok(big.length > 0);
  assert.ok(big.every((v) => cacheable(values(v))), 'parameters are backend-owned');
  const sd = model.stateDict();
  assert.ok(big.every((v) => cacheable(values(v))), 'stateDict copied without handing out the arrays');
  const [name, saved] = [...sd].find(([, t]) => t.data.length >= 4096)!;
  (saved.data as Float32Array).fill(1); // the state dict is a copy: the model must not change
  assert.notEqual(hostCopy(model.parameters().get(name)!)[0], 1);
  const other = new VisionTransformer(namedConfig('vit_nano_p4_28'), { seed: 2 });
  other.loadStateDict(sd);
  const loaded = [...other.parameters().values()].filter((v) => v.size >= 4096);
  assert.ok(loaded.every((v) => cacheable(values(v))), 'loaded parameters are backend-owned');
  assert.deepEqual([...hostCopy(other.parameters().get(name)!)].slice(0, 3), [1, 1, 1]);
  // AdamW updates them in place and keeps them backend-owned (views of larger pool buffers included); a parameter
  // sharing its buffer with another tensor gets a backend-owned copy first.
  const params = [...model.trainableParameters().values()].filter((v) => v.size >= 4096);
  const before = params.map((v) => values(v));
  const shared = tf.variable(params[0]!, true, 'shared_with_model');
  const all = [...params, shared];
  const zeros = () => all.map((v) => tf.variable(tf.zerosLike(v), false));
  const [m, v] = [zeros(), zeros()], grads = all.map((p) => tf.onesLike(p));
  adamwStep(all, grads, m, v, 1e-3, 0, 0.9, 0.999, 1e-8, 1);
  params.slice(1).forEach((p, i) => assert.equal(values(p), before[i + 1], `parameter ${i + 1} updated in place`));
  assert.ok(all.every((p) => cacheable(values(p))), 'still backend-owned after AdamW');
  assert.notEqual(values(shared), values(params[0]!), 'the shared parameter got its own copy');
  assert.equal(other.parameters().get(name)!.dataSync()[0], 1);
  tf.dispose([...m, ...v, ...grads, shared]);
  model.dispose();
  other.dispose();
});
