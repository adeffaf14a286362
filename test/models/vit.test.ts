// The ViT of both families: full-width shallow models against the official code (torch 1.13, values computed once
// offline), partial-patch behaviour, masks, state-dict round trip and errors, gradients, parameter counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import type { HostTensor, StateDict } from '../../src/checkpoint/types.js';
import { createViT, dinoConfig, dinov2Config, namedConfig, VisionTransformer, type ViTConfig } from '../../src/models/index.js';

const vals = (t: HostTensor) => Array.from(t.data as Float32Array);

/**
 * Deterministic weights shared with the offline torch script: a 32-bit integer hash of the element index mixed with
 * a per-name seed, mapped to U(-0.02, 0.02); LayerNorm weights get +1.
 */
function detWeights(model: VisionTransformer): StateDict {
  const sd: StateDict = new Map();
  for (const [name, v] of model.namedParameters()) {
    let seed = 0;
    for (let i = 0; i < name.length; i++) seed += name.charCodeAt(i) * (i + 1);
    seed %= 1000;
    const data = new Float32Array(v.size);
    const ln = /(norm1|norm2)\.weight$/.test(name) || name === 'norm.weight';
    for (let i = 0; i < v.size; i++) {
      let h = (Math.imul(i, 2654435761) + seed * 97) >>> 0;
      h = (h ^ (h >>> 15)) >>> 0;
      h = Math.imul(h, 2246822519) >>> 0;
      h = (h ^ (h >>> 13)) >>> 0;
      data[i] = 0.04 * (h / 2 ** 32 - 0.5) + (ln ? 1 : 0);
    }
    sd.set(name, { dtype: 'float32', shape: [...v.shape], data });
  }
  return sd;
}

function image(shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i)), shape);
}

/** Compares the first values and the mean |x| of `t` with the torch fingerprint. */
function fingerprint(t: tf.Tensor, head: number[], absmean: number, what: string): void {
  const d = t.dataSync();
  head.forEach((v, i) => assert.ok(Math.abs(d[i]! - v) < 2e-5, `${what}[${i}] = ${d[i]} vs torch ${v}`));
  const am = tf.mean(tf.abs(t)).dataSync()[0]!;
  assert.ok(Math.abs(am - absmean) < 2e-5, `${what} mean |x| = ${am} vs torch ${absmean}`);
}

const shallowV2 = (over: Partial<ViTConfig>) => dinov2Config('small', 0, { depth: 1, ...over });

test('DINOv2 ViT-S/14-wide, 1 block, 56x70 input (pos-embed 37x37 -> 4x5, offset 0.1) matches the official code', async () => {
  await initBackend('cpu');
  const m = new VisionTransformer(shallowV2({}));
  m.loadStateDict(detWeights(m));
  const f = m.forwardFeatures(image([2, 3, 56, 70]));
  fingerprint(f.clsToken, [-0.0534263, -0.0212294, 0.4623272, 0.6951742, -1.3366871, 0.3571359], 0.8130726, 'x_norm_clstoken');
  const patch3 = f.patchTokens.slice([0, 3, 0], [2, 1, 384]);
  fingerprint(patch3, [0.8007999, 0.8996783, 0.6515396, 1.6796794, -1.6183437, -2.4127505], 0.7908756, 'x_norm_patchtokens[:, 3]');
  assert.deepEqual(f.prenorm.shape, [2, 21, 384]);
  fingerprint(f.prenorm, [-0.0010835, 2.69e-5, 0.0076882, 0.0111156, -0.0220225, 0.0057118], 0.1502781, 'x_prenorm');
  m.dispose();
});

test('DINOv2 ViT-S/14-wide with 4 registers, antialiased size interpolation, 42x42 input matches the official code', async () => {
  await initBackend('cpu');
  const m = new VisionTransformer(dinov2Config('small', 4, { depth: 1 }));
  m.loadStateDict(detWeights(m));
  const f = m.forwardFeatures(image([1, 3, 42, 42]));
  fingerprint(f.clsToken, [-0.0444384, -0.0201977, 0.4586928, 0.6959307, -1.3314083, 0.3557132], 0.8131434, 'x_norm_clstoken');
  fingerprint(f.regTokens, [0.158962, -1.3770363, 0.581783, -0.7320085, -0.7021786, -1.4314485], 0.8613973, 'x_norm_regtokens');
  fingerprint(f.patchTokens.slice([0, 3, 0], [1, 1, 384]), [-0.0405456, -0.189935, 0.4447452, 0.0809001, -0.2653289, 0.9475144], 0.8070053, 'patch 3');
  assert.deepEqual(f.prenorm.shape, [1, 14, 384]);
  fingerprint(f.prenorm, [-0.0009426, 3.92e-5, 0.0076258, 0.0111258, -0.0219459, 0.0056853], 0.1053553, 'x_prenorm');
  m.dispose();
});

test('DINO ViT-S/16-wide, 1 block, 40x56 input (partial patches floored, 14x14 -> 2x3) matches the official code', async () => {
  await initBackend('cpu');
  const m = new VisionTransformer(dinoConfig('small', 16, { depth: 1 }));
  m.loadStateDict(detWeights(m));
  const x = image([1, 3, 40, 56]);
  fingerprint(m.forward(x), [-0.6787694, -0.4919971, 0.7787928, -1.1775031, -1.8026983, 0.9191472], 0.8090728, 'forward');
  const attn = m.getLastSelfAttention(x);
  assert.deepEqual(attn.shape, [1, 6, 7, 7]);
  const clsRows = attn.slice([0, 0, 0, 0], [1, 6, 1, 7]);
  fingerprint(clsRows, [0.1442466, 0.134489, 0.1366857, 0.1398004, 0.1462418, 0.1483783], 0.1428571, 'attn[0, :, 0]');
  const [gil] = m.getIntermediateLayers(x, 1);
  fingerprint(gil!, [-0.6787694, -0.4919971, 0.7787928, -1.1775031, -1.8026983, 0.9191472], 0.7961708, 'get_intermediate_layers');
  m.dispose();
});

test('partial patches: v1 floors (crop-equivalent), v2 throws naming the patch size', async () => {
  await initBackend('cpu');
  const v1 = createViT(dinoConfig('tiny', 8, { imgSize: 32, embedDim: 24, depth: 1, numHeads: 2 }), { seed: 3 });
  const x = image([1, 3, 36, 36]);
  const cropped = x.slice([0, 0, 0, 0], [1, 3, 32, 32]);
  const a = v1.forward(x).dataSync();
  const b = v1.forward(cropped).dataSync();
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.deepEqual(v1.patchGrid(39, 47), [4, 5]);
  const v2 = createViT(dinov2Config('tiny', 0, { imgSize: 28, embedDim: 24, depth: 1, numHeads: 2 }), { seed: 3 });
  assert.throws(() => v2.forward(image([1, 3, 30, 28])), /30x28 is not a multiple of the patch size 14/);
  assert.throws(() => v2.patchGrid(28, 29), /multiple of the patch size 14/);
  assert.deepEqual(v2.patchGrid(28, 42), [2, 3]);
});

test('masks replace patch embeddings by mask_token before the pos-embed; v1 rejects masks', async () => {
  await initBackend('cpu');
  const m = createViT(dinov2Config('tiny', 2, { imgSize: 28, embedDim: 24, depth: 1, numHeads: 2 }), { seed: 5 });
  const x = image([2, 3, 28, 28]);
  const masks = tf.tensor2d([[1, 0, 0, 1], [0, 0, 0, 0]], [2, 4], 'bool');
  const plain = m.prepareTokens(x);
  const masked = m.prepareTokens(x, masks);
  // Layout [CLS, R1, R2, P1..P4]: masked patch token = mask_token + its pos-embed (registers have none).
  const pos = m.posEmbed.slice([0, 1, 0], [1, 1, 24]).reshape([24]);
  const want = tf.add(m.maskToken!.reshape([24]), pos).dataSync();
  const got = masked.slice([0, 3, 0], [1, 1, 24]).reshape([24]).dataSync();
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6));
  const diff = tf.abs(tf.sub(plain, masked)).sum(-1).arraySync() as number[][];
  assert.deepEqual(diff.map((r) => r.map((v) => v > 0)), [
    [false, false, false, true, false, false, true],
    [false, false, false, false, false, false, false],
  ]);
  const f = m.forwardFeatures(x, masks);
  assert.deepEqual(Array.from(f.masks!.dataSync()), [1, 0, 0, 1, 0, 0, 0, 0]);
  assert.throws(() => m.forwardFeatures(x, tf.zeros([2, 5])), /masks must be \[B, N\] = \[2, 4\]/);
  const v1 = createViT(dinoConfig('tiny', 14, { imgSize: 28, embedDim: 24, depth: 1, numHeads: 2 }));
  assert.throws(() => v1.forwardFeatures(x, masks), /only supported by DINOv2/);
});

test('state dict: official names and order, round trip, strict errors list missing / unexpected / mismatched', async () => {
  await initBackend('cpu');
  const cfg = dinov2Config('tiny', 4, { imgSize: 28, embedDim: 24, depth: 2, numHeads: 2, ffnLayer: 'swiglufused' });
  const a = createViT(cfg, { seed: 1 });
  const b = createViT(cfg, { seed: 2 });
  const keys = [...a.stateDict().keys()];
  assert.deepEqual(keys.slice(0, 6), ['cls_token', 'pos_embed', 'register_tokens', 'mask_token', 'patch_embed.proj.weight', 'patch_embed.proj.bias']);
  assert.deepEqual(keys.slice(6, 20), [
    'blocks.0.norm1.weight', 'blocks.0.norm1.bias', 'blocks.0.attn.qkv.weight', 'blocks.0.attn.qkv.bias',
    'blocks.0.attn.proj.weight', 'blocks.0.attn.proj.bias', 'blocks.0.ls1.gamma', 'blocks.0.norm2.weight',
    'blocks.0.norm2.bias', 'blocks.0.mlp.w12.weight', 'blocks.0.mlp.w12.bias', 'blocks.0.mlp.w3.weight',
    'blocks.0.mlp.w3.bias', 'blocks.0.ls2.gamma',
  ]);
  assert.deepEqual(keys.slice(-2), ['norm.weight', 'norm.bias']);
  assert.deepEqual(a.stateDict().get('mask_token')!.shape, [1, 24]);
  assert.deepEqual(a.stateDict().get('blocks.0.mlp.w12.weight')!.shape, [2 * 64, 24]); // ((int(96·2/3)+7)//8)·8 = 64
  const x = image([1, 3, 28, 28]);
  assert.ok(tf.max(tf.abs(tf.sub(a.forward(x), b.forward(x)))).dataSync()[0]! > 1e-4);
  b.loadStateDict(a.stateDict());
  assert.deepEqual(Array.from(b.forward(x).dataSync()), Array.from(a.forward(x).dataSync()));

  const sd = a.stateDict();
  sd.delete('norm.bias');
  sd.set('head.weight', { dtype: 'float32', shape: [1], data: new Float32Array(1) });
  sd.set('pos_embed', { dtype: 'float32', shape: [1, 5, 20], data: new Float32Array(100) });
  assert.throws(() => b.loadStateDict(sd), (e: Error) =>
    /missing keys \(1\): norm\.bias/.test(e.message) && /unexpected keys \(1\): head\.weight/.test(e.message) &&
    /pos_embed: checkpoint \[1,5,20\] vs model \[1,5,24\]/.test(e.message));
  sd.set('pos_embed', a.stateDict().get('pos_embed')!);
  const r = b.loadStateDict(sd, { strict: false });
  assert.deepEqual(r, { missing: ['norm.bias'], unexpected: ['head.weight'] });
});

test('gradients reach every parameter (v2 with registers, LayerScale, SwiGLU, masks, interpolated pos-embed; v1)', async () => {
  await initBackend('cpu');
  const v2 = createViT(dinov2Config('tiny', 2, { imgSize: 28, embedDim: 16, depth: 2, numHeads: 2, ffnLayer: 'swiglufused' }), { seed: 7 });
  const v1 = createViT(dinoConfig('tiny', 8, { imgSize: 16, embedDim: 16, depth: 2, numHeads: 2 }), { seed: 7 });
  const x = image([2, 3, 42, 28]);
  const masks = tf.tensor2d([[1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]], [2, 6], 'bool');
  const target = image([2, 9, 16]).mul(3);
  for (const [model, loss] of [
    [v2, () => {
      const f = v2.forwardFeatures(x, masks);
      return tf.add(tf.sum(tf.mul(f.clsToken, target.slice([0, 0, 0], [2, 1, 16]).reshape([2, 16]))),
        tf.add(tf.sum(tf.mul(f.patchTokens, target.slice([0, 0, 0], [2, 6, 16]))), tf.sum(tf.mul(f.regTokens, target.slice([0, 6, 0], [2, 2, 16])))));
    }],
    [v1, () => tf.sum(tf.mul(v1.getIntermediateLayers(image([2, 3, 24, 16]), 1)[0]!, target.slice([0, 0, 0], [2, 7, 16])))],
  ] as const) {
    const params = [...model.trainableParameters()];
    const { grads } = tf.variableGrads(loss as () => tf.Scalar, params.map(([, v]) => v));
    for (const [name, v] of params) {
      const g = grads[v.name];
      assert.ok(g, `no gradient for ${name}`);
      const d = g.dataSync();
      assert.ok(d.every(Number.isFinite) && d.some((e) => e !== 0), `zero or non-finite gradient for ${name}`);
    }
  }
});

test('parameter counts of the named configs (torch state_dict numel for S/B; shapes of §3e for L/g)', () => {
  const expected: Record<string, number> = {
    dino_vits16: 21_665_664,
    dino_vits8: 21_670_272,
    dino_vitb16: 85_798_656,
    dinov2_vits14: 22_056_576,
    dinov2_vits14_reg4: 22_058_112,
    dinov2_vitb14: 86_580_480,
    dinov2_vitl14: 304_368_640,
    dinov2_vitg14: 1_136_480_768,
  };
  for (const [name, n] of Object.entries(expected)) assert.equal(VisionTransformer.countParameters(namedConfig(name)), n, name);
  // The static count agrees with what a built model holds.
  for (const cfg of [namedConfig('vit_nano_p4_28'), dinov2Config('tiny', 4, { imgSize: 28, embedDim: 48, depth: 2, numHeads: 2, ffnLayer: 'swiglufused' })]) {
    const m = createViT(cfg);
    assert.equal(m.numParameters(), VisionTransformer.countParameters(cfg));
    m.dispose();
  }
});

test('seeded init: same seed same weights; official init statistics', async () => {
  await initBackend('cpu');
  const cfg = dinov2Config('tiny', 4, { imgSize: 56, embedDim: 64, depth: 1, numHeads: 2, initValues: 1e-5 });
  const a = createViT(cfg, { seed: 11 }).stateDict();
  const b = createViT(cfg, { seed: 11 }).stateDict();
  const c = createViT(cfg, { seed: 12 }).stateDict();
  assert.deepEqual(vals(a.get('blocks.0.attn.qkv.weight')!), vals(b.get('blocks.0.attn.qkv.weight')!));
  assert.notDeepEqual(vals(a.get('blocks.0.attn.qkv.weight')!), vals(c.get('blocks.0.attn.qkv.weight')!));
  const std = (d: ArrayLike<number>) => {
    const arr = Array.from(d);
    const m = arr.reduce((s, x) => s + x, 0) / arr.length;
    return Math.sqrt(arr.reduce((s, x) => s + (x - m) ** 2, 0) / arr.length);
  };
  assert.ok(Math.abs(std(vals(a.get('blocks.0.mlp.fc1.weight')!)) - 0.02) < 0.001);
  assert.ok(std(vals(a.get('cls_token')!)) < 1e-5);
  assert.ok(vals(a.get('blocks.0.attn.qkv.bias')!).every((v) => v === 0));
  assert.ok(vals(a.get('mask_token')!).every((v) => v === 0));
  assert.ok(vals(a.get('blocks.0.ls1.gamma')!).every((v) => Math.abs(v - 1e-5) < 1e-12));
  // Patch embed keeps torch's default Conv2d init, U(±1/√(3·14·14)).
  const pw = vals(a.get('patch_embed.proj.weight')!);
  const bound = 1 / Math.sqrt(3 * 14 * 14);
  assert.ok(pw.every((v) => Math.abs(v) <= bound) && Math.max(...pw.map(Math.abs)) > 0.9 * bound);
  const v1 = createViT(dinoConfig('tiny', 16, { imgSize: 32, embedDim: 64, depth: 1, numHeads: 2 }), { seed: 1 }).stateDict();
  assert.ok(Math.abs(std(vals(v1.get('cls_token')!)) - 0.02) < 0.01);
  assert.equal(v1.has('mask_token'), false);
});

test('forwardTokens and forward agree with forwardFeatures; intermediate layers by index and count', async () => {
  await initBackend('cpu');
  const m = createViT(dinov2Config('tiny', 1, { imgSize: 28, embedDim: 16, depth: 3, numHeads: 2 }), { seed: 4 });
  const x = image([2, 3, 28, 42]);
  const masks = tf.tensor2d([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], [2, 6], 'bool');
  const f = m.forwardFeatures(x, masks);
  const t = m.forwardTokens(x, masks);
  assert.deepEqual(Array.from(t.cls.dataSync()), Array.from(f.clsToken.dataSync()));
  assert.deepEqual(Array.from(t.patch.dataSync()), Array.from(f.patchTokens.dataSync()));
  assert.deepEqual(Array.from(m.forward(x).dataSync()), Array.from(m.forwardFeatures(x).clsToken.dataSync()));
  const last = m.getIntermediateLayers(x, 1, { norm: false, tokens: 'all' })[0]!;
  assert.deepEqual(Array.from(last.dataSync()), Array.from(m.forwardFeatures(x).prenorm.dataSync()));
  const byIndex = m.getIntermediateLayers(x, [0, 2]);
  const byCount = m.getIntermediateLayers(x, 3);
  assert.deepEqual(Array.from(byIndex[1]!.dataSync()), Array.from(byCount[2]!.dataSync()));
  const [[patch, cls]] = m.getIntermediateLayers(x, 1, { reshape: true, returnClassToken: true }) as [[tf.Tensor, tf.Tensor]];
  assert.deepEqual(patch.shape, [2, 16, 2, 3]);
  assert.deepEqual(cls.shape, [2, 16]);
  assert.throws(() => m.getIntermediateLayers(x, [3]), /block index 3 is outside 0\.\.2/);
});

test('no tensor leaks: every public call leaves only its outputs behind', async () => {
  await initBackend('cpu');
  const m = createViT(dinov2Config('tiny', 2, { imgSize: 28, embedDim: 16, depth: 2, numHeads: 2, dropPathRate: 0.3 }), { seed: 4 });
  const x = image([2, 3, 42, 28]);
  const masks = tf.tensor2d([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], [2, 6], 'bool');
  const calls: [string, () => tf.TensorContainer, number][] = [
    ['forward', () => m.forward(x), 1],
    ['forwardFeatures', () => m.forwardFeatures(x, masks) as unknown as tf.TensorContainer, 5],
    ['forwardTokens', () => m.forwardTokens(x), 2],
    ['getIntermediateLayers', () => m.getIntermediateLayers(x, 2, { returnClassToken: true, reshape: true }), 4],
    ['getLastSelfAttention', () => m.getLastSelfAttention(x), 1],
  ];
  for (const training of [false, true]) {
    m.train(training);
    for (const [name, call, outputs] of calls) {
      const before = tf.memory().numTensors;
      const out = call();
      assert.equal(tf.memory().numTensors - before, outputs, `${name} (training ${training})`);
      tf.dispose(out);
    }
  }
});

test('pos_embed init sincos: the 2-D sine-cosine grid (CLS at zero); every other parameter as with the official init', async () => {
  await tf.setBackend('cpu');
  const cfg = { ...dinoConfig('tiny', 4, { imgSize: 12 }), embedDim: 16, depth: 1, numHeads: 2 };
  const a = new VisionTransformer(cfg, { seed: 5 });
  const b = new VisionTransformer(cfg, { seed: 5, posEmbedInit: 'sincos' });
  const pe = b.posEmbed.dataSync();
  assert.deepEqual([...pe.slice(0, 16)], new Array(16).fill(0));
  // Token (row 0, col 1) = index 2: sin(1·ω_0) in channel 0, cos(1·ω_0) in channel 4, sin(0) in channel 8, cos(0) in 12.
  assert.ok(Math.abs(pe[2 * 16 + 0]! - Math.sin(1)) < 1e-6 && Math.abs(pe[2 * 16 + 4]! - Math.cos(1)) < 1e-6);
  assert.equal(pe[2 * 16 + 8], 0);
  assert.equal(pe[2 * 16 + 12], 1);
  for (const [name, t] of a.stateDict()) if (name !== 'pos_embed') assert.deepEqual(b.stateDict().get(name)!.data, t.data, name);
  assert.throws(() => new VisionTransformer({ ...cfg, embedDim: 18, numHeads: 2 }, { posEmbedInit: 'sincos' }), /multiple of 4/);
  a.dispose();
  b.dispose();
});
