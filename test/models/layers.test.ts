// Layers and the DINO head: functional ops against hand-computed values, patch embedding against a real convolution,
// stochastic-depth statistics, head naming / init / frozen weight_g.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { DINOHead } from '../../src/models/dino_head.js';
import { Block } from '../../src/nn/block.js';
import { DropPath, dropAddResidualStochasticDepth } from '../../src/nn/drop_path.js';
import { gelu, l2Normalize, layerNorm, linear, scaledDotProductAttention, silu } from '../../src/nn/functional.js';
import { PatchEmbed } from '../../src/nn/patch_embed.js';
import { Rng } from '../../src/util/rng.js';
import type { HostTensor } from '../../src/checkpoint/types.js';

const vals = (t: HostTensor) => Array.from(t.data as Float32Array);

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

test('functional ops on hand-checked values', async () => {
  await initBackend('cpu');
  // linear: [1,2]·[[1,0],[2,3],[-1,1]]ᵀ + [0.5,0,1] = [1.5, 8, 2]
  close(linear(tf.tensor2d([[1, 2]]), tf.tensor2d([[1, 0], [2, 3], [-1, 1]]), tf.tensor1d([0.5, 0, 1])).dataSync(), [1.5, 8, 2], 1e-6, 'linear');
  // layerNorm of [1,2,3,4]: mean 2.5, var 1.25 → (x-2.5)/√1.25
  const s = Math.sqrt(1.25 + 1e-6);
  close(layerNorm(tf.tensor2d([[1, 2, 3, 4]]), tf.ones([4]), tf.zeros([4]), 1e-6).dataSync(), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-6, 'layerNorm');
  // exact GELU: gelu(1) = 0.8413447, gelu(-1) = -0.1586553, gelu(2) = 1.9544997 (tanh approx would give 0.8411920 at 1)
  close(gelu(tf.tensor1d([1, -1, 2, 0])).dataSync(), [0.8413447, -0.1586553, 1.9544997, 0], 2e-7, 'gelu');
  close(silu(tf.tensor1d([1, -2])).dataSync(), [0.7310586, -0.2384058], 1e-6, 'silu');
  close(l2Normalize(tf.tensor2d([[3, 4], [0, 0]]), -1, 1e-12).dataSync(), [0.6, 0.8, 0, 0], 1e-7, 'l2Normalize');
  // attention with 2 tokens, hd 1: q=[1,0], k=[1,2], v=[10,20], scale 1 → row 0 softmax([1,2]), row 1 uniform
  const q = tf.tensor4d([1, 0], [1, 1, 2, 1]);
  const k = tf.tensor4d([1, 2], [1, 1, 2, 1]);
  const v = tf.tensor4d([10, 20], [1, 1, 2, 1]);
  const p0 = Math.exp(1) / (Math.exp(1) + Math.exp(2));
  const { out, probs } = scaledDotProductAttention(q, k, v, 1, { returnProbs: true });
  close(probs.dataSync(), [p0, 1 - p0, 0.5, 0.5], 1e-6, 'probs');
  close(out.dataSync(), [10 * p0 + 20 * (1 - p0), 15], 1e-5, 'attention out');
});

test('PatchEmbed equals a stride-p convolution (NCHW, torch weight layout)', async () => {
  await initBackend('cpu');
  const pe = new PatchEmbed(4, 3, 5, false, new Rng(1));
  const x = tf.randomNormal([2, 3, 8, 12], 0, 1, 'float32', 3);
  const ours = pe.forward(x); // [2, 6, 5]
  // tf.conv2d is NHWC with filter [kh, kw, in, out].
  const ref = tf.conv2d(x.transpose([0, 2, 3, 1]) as tf.Tensor4D, pe.proj.weight.transpose([2, 3, 1, 0]) as tf.Tensor4D, 4, 'valid')
    .add(pe.proj.bias)
    .reshape([2, 6, 5]);
  close(ours.dataSync(), ref.dataSync(), 1e-5, 'patch embed');
  assert.deepEqual(pe.proj.weight.shape, [5, 3, 4, 4]);
});

test('DropPath: per-sample keep rate 1-p, survivors scaled by 1/(1-p), identity in eval', async () => {
  await initBackend('cpu');
  const dp = new DropPath(0.3, new Rng(42));
  const x = tf.ones([4000, 2]);
  assert.equal(dp.forward(x), x, 'eval mode is the identity');
  dp.train();
  const y = dp.forward(x).arraySync() as number[][];
  const kept = y.filter((r) => r[0] !== 0);
  assert.ok(y.every((r) => r[0] === r[1]), 'one draw per sample');
  assert.ok(kept.every((r) => Math.abs(r[0]! - 1 / 0.7) < 1e-6));
  const rate = kept.length / y.length;
  assert.ok(Math.abs(rate - 0.7) < 0.03, `keep rate ${rate}`); // 4.1 standard deviations
});

test('v2 batch-subset stochastic depth: exactly max(int(B(1-p)),1) samples get the residual, scaled by B/subset', async () => {
  await initBackend('cpu');
  const x = tf.zeros([10, 3, 2]);
  const rng = new Rng(9);
  const counts = new Array(10).fill(0);
  for (let trial = 0; trial < 200; trial++) {
    const y = dropAddResidualStochasticDepth(x, (s) => tf.onesLike(s), 0.3, rng).arraySync() as number[][][];
    const hit = y.map((r) => r[0]![0]!);
    assert.equal(hit.filter((v) => v !== 0).length, 7);
    assert.ok(hit.every((v) => v === 0 || Math.abs(v - 10 / 7) < 1e-6));
    hit.forEach((v, i) => (counts[i] += v !== 0 ? 1 : 0));
  }
  // Each sample is chosen with probability 0.7 (140 of 200 expected).
  assert.ok(counts.every((c) => c > 110 && c < 170), `selection counts ${counts}`);
  assert.equal(dropAddResidualStochasticDepth(tf.zeros([3, 1, 1]), (s) => tf.onesLike(s), 0.9, rng).sum().dataSync()[0], 3);
});

test('v2 batch-subset stochastic depth: the same gradient on cpu and wasm (no UnsortedSegmentSum needed)', async () => {
  const grad = async (backend: 'cpu' | 'wasm') => {
    await initBackend(backend);
    const x = tf.tensor3d(Array.from({ length: 24 }, (_, i) => Math.sin(i)), [4, 3, 2]);
    const w = tf.tensor1d([0.5, -2]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(dropAddResidualStochasticDepth(t, (s) => tf.mul(s, w), 0.5, new Rng(3)))))(x);
    return Array.from(g.dataSync());
  };
  close(await grad('wasm'), await grad('cpu'), 1e-5, 'dx');
});

test('Block: v2 above 0.1 uses the subset residual, v1 the per-sample DropPath; eval is deterministic', async () => {
  await initBackend('cpu');
  const common = {
    dim: 8, numHeads: 2, mlpRatio: 2, qkvBias: true, projBias: true, ffnBias: true, ffnLayer: 'mlp' as const,
    initValues: null, eps: 1e-6, dropPath: 0.5, std: 0.02,
  };
  const x = tf.randomNormal([6, 3, 8], 0, 1, 'float32', 1);
  const v2 = new Block({ ...common, family: 'dinov2', rng: new Rng(1), dropRng: new Rng(2) });
  const evalOut = v2.forward(x).dataSync();
  assert.deepEqual(Array.from(v2.forward(x).dataSync()), Array.from(evalOut));
  v2.train();
  // B=6, p=0.5 → the attention branch reaches exactly 3 samples; with only that branch changed rows are visible.
  const changed = (y: tf.Tensor) => (tf.abs(tf.sub(y, x)).sum([1, 2]).arraySync() as number[]).filter((v) => v > 0).length;
  const attnOnly = dropAddResidualStochasticDepth(x, (s) => v2.attnResidual(s), 0.5, new Rng(3));
  assert.equal(changed(attnOnly), 3);
  assert.ok(changed(v2.forward(x)) >= 3);
  const v1 = new Block({ ...common, family: 'dino', rng: new Rng(1), dropRng: new Rng(2) });
  v1.train();
  assert.notDeepEqual(Array.from(v1.forward(x).dataSync()), Array.from(evalOut));
});

test('DINOHead: official names (plain, BN, 1 layer), init order, frozen weight_g, parameter count', async () => {
  await initBackend('cpu');
  const h = new DINOHead({ inDim: 16, outDim: 40, hiddenDim: 32, bottleneckDim: 8, seed: 1 });
  assert.deepEqual([...h.stateDict().keys()], [
    'mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias', 'mlp.4.weight', 'mlp.4.bias', 'last_layer.weight_g', 'last_layer.weight_v',
  ]);
  const sd = h.stateDict();
  assert.deepEqual(sd.get('last_layer.weight_g')!.shape, [40, 1]);
  assert.ok(vals(sd.get('last_layer.weight_g')!).every((v) => v === 1));
  assert.ok(vals(sd.get('mlp.2.bias')!).every((v) => v === 0));
  const wv = vals(sd.get('last_layer.weight_v')!);
  const bound = 1 / Math.sqrt(8); // torch default Linear init, not the trunc_normal of the MLP
  assert.ok(wv.every((v) => Math.abs(v) <= bound) && Math.max(...wv.map(Math.abs)) > 0.8 * bound);
  // g = 1: every prototype row of the effective weight has unit norm.
  const norms = tf.norm(h.effectiveLastLayerWeight(), 'euclidean', 1).dataSync();
  close(norms, new Array(40).fill(1), 1e-5, 'row norms');
  assert.equal(h.trainableParameters().has('last_layer.weight_g'), true);
  const frozen = new DINOHead({ inDim: 16, outDim: 40, hiddenDim: 32, bottleneckDim: 8, normLastLayer: true });
  assert.equal(frozen.trainableParameters().has('last_layer.weight_g'), false);
  assert.equal(frozen.parameters().has('last_layer.weight_g'), true);

  const bn = new DINOHead({ inDim: 16, outDim: 40, hiddenDim: 32, bottleneckDim: 8, useBn: true });
  assert.deepEqual([...bn.stateDict().keys()].filter((k) => k.startsWith('mlp.')), [
    'mlp.0.weight', 'mlp.0.bias',
    'mlp.1.weight', 'mlp.1.bias', 'mlp.1.running_mean', 'mlp.1.running_var', 'mlp.1.num_batches_tracked',
    'mlp.3.weight', 'mlp.3.bias',
    'mlp.4.weight', 'mlp.4.bias', 'mlp.4.running_mean', 'mlp.4.running_var', 'mlp.4.num_batches_tracked',
    'mlp.6.weight', 'mlp.6.bias',
  ]);
  assert.deepEqual(bn.forward(tf.randomNormal([4, 16])).shape, [4, 40]);
  const one = new DINOHead({ inDim: 16, outDim: 40, nlayers: 1, bottleneckDim: 8 });
  assert.deepEqual([...one.stateDict().keys()], ['mlp.weight', 'mlp.bias', 'last_layer.weight_g', 'last_layer.weight_v']);

  for (const o of [{ inDim: 16, outDim: 40, hiddenDim: 32, bottleneckDim: 8 }, { inDim: 16, outDim: 40, hiddenDim: 32, bottleneckDim: 8, useBn: true }]) {
    assert.equal(new DINOHead(o).numParameters(), DINOHead.countParameters(o));
  }
  // §2.5: about 22.35M for D=384, K=65536 (bottleneck 256, hidden 2048); exact number from torch state_dict numel.
  assert.equal(DINOHead.countParameters({ inDim: 384, outDim: 65536 }), 22_352_128);
});

test('BatchNorm buffers: int64 num_batches_tracked in the state dict, running stats updated in training, round trip', async () => {
  await initBackend('cpu');
  const h = new DINOHead({ inDim: 4, outDim: 6, hiddenDim: 5, bottleneckDim: 3, nlayers: 2, useBn: true, seed: 2 });
  h.train();
  h.forward(tf.randomNormal([8, 4], 0, 1, 'float32', 5));
  const sd = h.stateDict();
  const nbt = sd.get('mlp.1.num_batches_tracked')!;
  assert.equal(nbt.dtype, 'int64');
  assert.deepEqual(Array.from(nbt.data as BigInt64Array), [1n]);
  assert.ok(vals(sd.get('mlp.1.running_mean')!).some((v) => v !== 0));
  const g = new DINOHead({ inDim: 4, outDim: 6, hiddenDim: 5, bottleneckDim: 3, nlayers: 2, useBn: true, seed: 3 });
  g.loadStateDict(sd);
  h.eval();
  g.eval();
  const x = tf.randomNormal([3, 4], 0, 1, 'float32', 6);
  assert.deepEqual(Array.from(g.forward(x).dataSync()), Array.from(h.forward(x).dataSync()));
});
