// The native backend recycles disposed output buffers; these check it never recycles one still visible elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { allocF32, clearPool, poolStats, recycle, setPoolLimitBytes } from '../../src/backend/native/buffer_pool.js';
import { nativeSkip, rand } from './native_helpers.js';

const skip = nativeSkip;
const N = 8192; // above the pooling threshold

test('disposed outputs are reused by the next allocation of the same size', { skip }, async () => {
  await tf.setBackend('native');
  const a = tf.tensor(rand([N], 1), [N]);
  const y = tf.exp(a);
  const before = poolStats().buffers;
  y.dispose();
  assert.equal(poolStats().buffers, before + 1);
  allocF32(N);
  assert.equal(poolStats().buffers, before);
  a.dispose();
});

test('arrays read with dataSync keep their values after dispose and later kernels', { skip }, async () => {
  await tf.setBackend('native');
  const a = tf.tensor(rand([N], 2), [N]);
  const y = tf.exp(a);
  const values = y.dataSync();
  const copy = values.slice();
  y.dispose();
  const others = [tf.neg(a), tf.sqrt(tf.abs(a)), tf.mul(a, 3)];
  assert.deepEqual(values, copy);
  tf.dispose([a, ...others]);
});

test('contiguous slices (views) of a disposed output keep their values', { skip }, async () => {
  await tf.setBackend('native');
  const src = rand([2, N], 3);
  const a = tf.tensor(src, [2, N]);
  const y = tf.mul(a, 2);
  // Nothing reads y before it is disposed, so only the view bookkeeping keeps its buffer out of the pool.
  const [first, second] = tf.unstack(y) as [tf.Tensor, tf.Tensor];
  const part = tf.slice(y, [1, 0], [1, N]);
  y.dispose();
  const others = [tf.mul(a, -1), tf.add(a, 7), tf.sub(a, 1)]; // same size: would take y's buffer if it were pooled
  const doubled = Array.from(src, (v) => Math.fround(v * 2));
  assert.deepEqual(Array.from(first.dataSync()), doubled.slice(0, N));
  assert.deepEqual(Array.from(second.dataSync()), doubled.slice(N));
  assert.deepEqual(Array.from(part.dataSync()), doubled.slice(N));
  tf.dispose([a, first, second, part, ...others]);
});

test('a full pool evicts its least recently used sizes for new ones, and honours a lower limit', () => {
  clearPool();
  setPoolLimitBytes((3 * N + 3) * 4); // exactly one buffer each of N, N + 1 and N + 2 floats
  try {
    const [b0, b1, b2] = [N, N + 1, N + 2].map((n) => allocF32(n));
    [b0, b1, b2].forEach((b) => recycle(b));
    assert.deepEqual(poolStats(), { buffers: 3, bytes: (3 * N + 3) * 4 });
    assert.equal(allocF32(N + 1), b1);
    recycle(b1); // N + 1 is now the most recently used size; N the stalest, then N + 2
    const fresh = allocF32(N + 3);
    recycle(fresh); // does not fit: N and then N + 2 are evicted, not the new buffer dropped
    assert.deepEqual(poolStats(), { buffers: 2, bytes: (2 * N + 4) * 4 });
    assert.equal(allocF32(N + 3), fresh);
    assert.equal(allocF32(N + 1), b1);
    assert.notEqual(allocF32(N), b0, 'N was evicted');
    recycle(b1);
    setPoolLimitBytes(0);
    assert.deepEqual(poolStats(), { buffers: 0, bytes: 0 });
  } finally {
    setPoolLimitBytes(2 * 1024 ** 3);
  }
});

test('a request with no free buffer of its size takes a free one up to 1.5x larger, as a view, and gives it back whole', () => {
  clearPool();
  try {
    const big = allocF32(3 * N);
    recycle(big);
    // 3N is 1.5x of 2N, so a 2N request may take it; an N request may not (3x).
    const small = allocF32(N);
    assert.notEqual(small.buffer, big.buffer, 'a buffer 3x larger is not used');
    const view = allocF32(2 * N);
    assert.equal(view.length, 2 * N);
    assert.equal(view.buffer, big.buffer, 'the 3N buffer serves a 2N request');
    assert.deepEqual(poolStats(), { buffers: 0, bytes: 0 });
    recycle(view);
    assert.deepEqual(poolStats(), { buffers: 1, bytes: 3 * N * 4 }, 'the whole buffer is back');
    const again = allocF32(3 * N);
    assert.equal(again, big, 'and serves its own size again, whole');
    recycle(small);
  } finally {
    clearPool();
  }
});

test('tensors stored in best-fit views keep their values and sizes through kernels (native)', { skip }, async () => {
  await tf.setBackend('native');
  clearPool();
  const a = tf.tensor(rand([3 * N], 7), [3 * N]);
  tf.exp(a).dispose(); // a free 3N buffer
  const b = tf.tensor(rand([2 * N], 8), [2 * N]);
  const y = tf.mul(b, 2); // 2N output: a view of the 3N buffer
  const want = Array.from(b.dataSync(), (v) => Math.fround(v * 2));
  assert.equal(y.dataSync().length, 2 * N);
  assert.deepEqual(Array.from(y.dataSync()), want);
  assert.deepEqual(Array.from(tf.add(y, 0).dataSync()), want);
  tf.dispose([a, b, y]);
});
