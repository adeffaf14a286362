// Every overridden native kernel against the pure-JS cpu backend: odd shapes, broadcasts, transposes, gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { compareBackends, nativeSkip } from './native_helpers.js';

const skip = nativeSkip;

test('matmul: plain, transposed, batched and batch-broadcast, with gradients', { skip }, async () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const a = ta ? [5, 7] : [7, 5], b = tb ? [3, 5] : [5, 3];
    await compareBackends(`matmul ${ta} ${tb}`, (x, y) => tf.matMul(x!, y!, ta, tb), [a, b], { grad: true });
    await compareBackends(`batched ${ta} ${tb}`, (x, y) => tf.matMul(x!, y!, ta, tb), [[2, 3, ...a], [2, 3, ...b]], { grad: true });
  }
  // Batch broadcasting (forward only: TF.js's own BatchMatMul gradient fails there, on cpu too).
  await compareBackends('bcast rank-2 b', (x, y) => tf.matMul(x!, y!), [[4, 7, 5], [5, 6]]);
  await compareBackends('bcast batch 1', (x, y) => tf.matMul(x!, y!, false, true), [[1, 7, 5], [3, 6, 5]]);
  await compareBackends('K = 1 and big K', (x, y) => tf.matMul(x!, y!), [[9, 1], [1, 11]]);
  await compareBackends('long K', (x, y) => tf.matMul(x!, y!), [[3, 1000], [1000, 17]], { rtol: 1e-3, atol: 1e-4 });
  // Shapes where the addon multiplies by a transposed copy of B (a Linear layer's data and weight gradients), and
  // where it computes (Bᵀ·A)ᵀ instead of Aᵀ·B (a wide weight gradient). Forward only: the cpu reference is slow here.
  for (const ta of [false, true]) {
    const a = ta ? [512, 1030] : [1030, 512];
    await compareBackends(`tall A ${ta}, row-major B`, (x, y) => tf.matMul(x!, y!, ta, false), [a, [512, 1024]], { rtol: 1e-3, atol: 1e-3 });
  }
  await compareBackends('Aᵀ·B as (Bᵀ·A)ᵀ', (x, y) => tf.matMul(x!, y!, true, false), [[1800, 300], [1800, 1100]], { rtol: 1e-3, atol: 1e-3 });
});

test('fused matmul with bias and activations', { skip }, async () => {
  for (const activation of ['linear', 'relu', 'sigmoid', 'elu', 'relu6'] as const) {
    await compareBackends(`fused ${activation}`, (x, w, b) => tf.fused.matMul({ a: x!, b: w!, bias: b!, activation, transposeB: true }),
      [[6, 9], [4, 9], [4]], { grad: activation === 'linear' || activation === 'relu' });
  }
});

test('binary ops with broadcasting, and gradients', { skip }, async () => {
  const ops: [string, (a: Tensor, b: Tensor) => Tensor, [number, number]?][] = [
    ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div, [0.5, 2]], ['maximum', tf.maximum],
    ['minimum', tf.minimum], ['pow', tf.pow, [0.5, 2]], ['squaredDifference', tf.squaredDifference],
  ];
  const shapes: [number[], number[]][] = [
    [[3, 5], [3, 5]], [[3, 1, 5], [4, 1]], [[2, 3, 4], [4]], [[5, 1], [1, 6]], [[7], []], [[], [2, 3]], [[2, 1, 3, 1], [1, 4, 1, 5]],
  ];
  for (const [name, op, range] of ops) {
    for (const [sa, sb] of shapes) {
      // TF.js's Maximum/Minimum/SquaredDifference gradients do not reduce over broadcast dims (they fail on cpu too).
      const grad = name !== 'pow' && !(['maximum', 'minimum', 'squaredDifference'].includes(name) && String(sa) !== String(sb));
      await compareBackends(`${name} ${sa} ${sb}`, (a, b) => op(a!, b!), [sa, sb], { grad, range });
    }
  }
  await compareBackends('addN', (a, b, c) => tf.addN([a!, b!, c!]), [[4, 5], [4, 5], [4, 5]], { grad: true });
  await compareBackends('large broadcast add', (a, b) => tf.add(a!, b!), [[64, 197, 16], [197, 1]]);
});

test('unary ops and gradients', { skip }, async () => {
  const ops: [string, (x: Tensor) => Tensor, [number, number]?][] = [
    ['neg', tf.neg], ['abs', tf.abs], ['exp', tf.exp], ['log', tf.log, [0.1, 3]], ['sqrt', tf.sqrt, [0.1, 3]],
    ['rsqrt', tf.rsqrt, [0.1, 3]], ['square', tf.square], ['relu', tf.relu], ['sigmoid', tf.sigmoid], ['tanh', tf.tanh],
    ['erf', tf.erf], ['reciprocal', tf.reciprocal, [0.5, 3]], ['log1p', tf.log1p, [0, 3]], ['relu6', tf.relu6, [-3, 9]],
    ['step', (x) => tf.step(x, 0.3)], ['softplus', tf.softplus], ['expm1', tf.expm1], ['sign', tf.sign],
  ];
  for (const [name, op, range] of ops) {
    await compareBackends(name, (x) => op(x!), [[37, 3]], { grad: name !== 'sign' && name !== 'step', range });
  }
  await compareBackends('exp large', (x) => tf.exp(x!), [[70000]]);
});

test('reductions over any axes, with keepDims and gradients', { skip }, async () => {
  const cases: [number[], number | number[], boolean][] = [
    [[4, 5, 6], -1, false], [[4, 5, 6], 0, true], [[4, 5, 6], 1, false], [[4, 5, 6], [0, 2], false],
    [[4, 5, 6], [0, 1, 2], false], [[3, 1, 7], [1, 2], true], [[1, 9], 0, false], [[50000], 0, false],
  ];
  for (const [shape, axis, keep] of cases) {
    await compareBackends(`sum ${shape} ${axis}`, (x) => tf.sum(x!, axis, keep), [shape], { grad: true, rtol: 1e-4, atol: 1e-4 });
    await compareBackends(`mean ${shape} ${axis}`, (x) => tf.mean(x!, axis, keep), [shape], { grad: true });
    await compareBackends(`max ${shape} ${axis}`, (x) => tf.max(x!, axis, keep), [shape], { grad: true });
    await compareBackends(`min ${shape} ${axis}`, (x) => tf.min(x!, axis, keep), [shape]);
    await compareBackends(`prod ${shape} ${axis}`, (x) => tf.prod(x!, axis, keep), [shape], { range: [0.9, 1.1] });
  }
});

test('transpose, softmax, concat and slice, with gradients', { skip }, async () => {
  for (const perm of [[1, 0, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0], [0, 3, 1, 2], [2, 0, 3, 1]]) {
    await compareBackends(`transpose ${perm}`, (x) => tf.transpose(x!, perm), [[3, 5, 1, 7]], { grad: true });
    await compareBackends(`transpose big ${perm}`, (x) => tf.transpose(x!, perm), [[2, 37, 6, 33]]);
  }
  await compareBackends('transpose 5d (qkv heads)', (x) => tf.transpose(x!, [2, 0, 3, 1, 4]), [[2, 9, 3, 4, 5]], { grad: true });
  await compareBackends('softmax', (x) => tf.softmax(x!), [[6, 4, 11]], { grad: true });
  for (const axis of [0, 1, 2, -1]) {
    await compareBackends(`concat ${axis}`, (a, b) => tf.concat([a!, b!], axis), [[2, 3, 4], [2, 3, 4]], { grad: true });
  }
  await compareBackends('concat big axis 0', (a, b) => tf.concat([a!, b!], 0), [[3, 20000], [5, 20000]]);
  await compareBackends('stack big', (a, b, c) => tf.stack([a!, b!, c!]), [[9, 9000], [9, 9000], [9, 9000]]);
  await compareBackends('concat uneven', (a, b, c) => tf.concat([a!, b!, c!], 1), [[2, 1, 4], [2, 5, 4], [2, 2, 4]], { grad: true });
  await compareBackends('strided slice', (x) => tf.slice(x!, [1, 0, 2], [2, -1, 3]), [[4, 3, 6]], { grad: true });
  await compareBackends('tile', (x) => tf.tile(x!, [2, 1, 3]), [[3, 1, 4]], { grad: true });
  await compareBackends('broadcastTo', (x) => tf.broadcastTo(x!, [5, 2, 4]), [[1, 1, 4]], { grad: true });
  await compareBackends('split strided', (x) => tf.concat(tf.split(x!, [2, 3, 1], 1).map((t, i) => tf.mul(t, i + 1)), 1), [[4, 6, 3]], { grad: true });
  await compareBackends('split contiguous', (x) => tf.concat(tf.split(x!, 2, 0).map((t, i) => tf.mul(t, i + 1)), 0), [[4, 6]], { grad: true });
  await compareBackends('stack/unstack', (x) => tf.stack(tf.unstack(x!, 2).map((t, i) => tf.mul(t, i + 1)), 1), [[2, 3, 4]], { grad: true });
  await compareBackends('slice middle', (x) => tf.slice(x!, [0, 1], [5, 1]), [[5, 7]], { grad: true });
});

test('int32 tensors still work through the cpu fallback', { skip }, async () => {
  await tf.setBackend('native');
  const a = tf.tensor([1, 2, 3], [3], 'int32'), b = tf.tensor([4, 5, 6], [3], 'int32');
  const c = tf.add(a, b);
  assert.equal(c.dtype, 'int32');
  assert.deepEqual(Array.from(c.dataSync()), [5, 7, 9]);
  assert.deepEqual(Array.from(tf.sum(b).dataSync()), [15]);
  tf.dispose([a, b, c]);
});

test('attentionHeads: per-head softmax(scale·q·kᵀ)·v, probabilities and head blocks against a loop; wrong sizes throw', { skip: nativeSkip }, async () => {
  const { nativeAddon } = await import('../../src/backend/native/register.js');
  const addon = nativeAddon()!;
  const [B, T, H, hd, scale] = [3, 5, 3, 4, 0.7]; // 9 heads: groups of 5 and 4 on 2 threads
  const D = H * hd;
  const qkv = Float32Array.from({ length: B * T * 3 * D }, (_, i) => Math.sin(i * 0.9));
  const out = new Float32Array(B * T * D), probs = new Float32Array(B * H * T * T), heads = new Float32Array(3 * B * T * D);
  addon.attentionHeads(qkv, out, [B, T, H, hd], scale, probs, heads);
  const at = (b: number, t: number, s: number, h: number, j: number) => qkv[((b * T + t) * 3 + s) * D + h * hd + j]!;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const scores = Array.from({ length: T }, (_, u) => {
      let dot = 0;
      for (let j = 0; j < hd; j++) dot += at(b, t, 0, h, j) * at(b, u, 1, h, j);
      return dot * scale;
    });
    const mx = Math.max(...scores), e = scores.map((x) => Math.exp(x - mx)), sum = e.reduce((x, y) => x + y, 0);
    e.forEach((x, u) => assert.ok(Math.abs(probs[((b * H + h) * T + t) * T + u]! - x / sum) < 1e-6, 'probability'));
    for (let j = 0; j < hd; j++) {
      const want = e.reduce((acc, x, u) => acc + (x / sum) * at(b, u, 2, h, j), 0);
      assert.ok(Math.abs(out[(b * T + t) * D + h * hd + j]! - want) < 1e-5, `out[${b},${t},${h}·hd+${j}]`);
      for (let s = 0; s < 3; s++) assert.equal(heads[(((s * B + b) * H + h) * T + t) * hd + j], at(b, t, s, h, j), 'head block');
    }
  }
  assert.throws(() => addon.attentionHeads(qkv, out.subarray(1), [B, T, H, hd], scale, null), /sizes do not match/);
  const dqkv = new Float32Array(qkv.length);
  assert.throws(() => addon.attentionHeadsGrad(heads, probs.subarray(1), out, dqkv, [B, T, H, hd], scale, null), /sizes do not match/);
});
