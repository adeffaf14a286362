// Key mapping and config detection on small synthetic state dicts (every naming of dino-reference.md §3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectConfig, expectedShapes, fromOfficial, loadBackboneWeights, saveSafetensors, toOfficial } from '../../src/checkpoint/index.js';
import { detectHeadOptions, swigluHidden } from '../../src/checkpoint/detect.js';
import type { HostTensor, StateDict } from '../../src/checkpoint/types.js';
import { dinov2Config, type ViTConfig } from '../../src/models/config.js';
import { diffStateDicts, tempDir } from './helpers.js';

/** A state dict with the config's official keys and shapes; values encode the key so mix-ups show. */
function synth(c: ViTConfig): StateDict {
  const sd: StateDict = new Map();
  let k = 0;
  for (const [name, shape] of expectedShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const base = k++;
    sd.set(name, { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => base * 1000 + (i % 997)) });
  }
  return sd;
}

const small = (over: Partial<ViTConfig> = {}) => dinov2Config('small', 0, { embedDim: 128, depth: 2, numHeads: 2, imgSize: 28, ...over });

test('qkv is split into query/key/value rows and fused back in [q; k; v] order', () => {
  const c = small();
  const sd = synth(c);
  const hf = fromOfficial(sd, c, 'hf');
  const q = hf.get('encoder.layer.1.attention.attention.query.weight')!;
  const v = hf.get('encoder.layer.1.attention.attention.value.bias')!;
  const qkvW = sd.get('blocks.1.attn.qkv.weight')!.data;
  const qkvB = sd.get('blocks.1.attn.qkv.bias')!.data;
  assert.deepEqual(q.shape, [128, 128]);
  assert.deepEqual([...q.data.slice(0, 3)], [...qkvW.slice(0, 3)]);
  assert.deepEqual([...v.data], [...qkvB.slice(256, 384)]);
  assert.deepEqual(hf.get('encoder.layer.0.layer_scale2.lambda1')!.data, sd.get('blocks.0.ls2.gamma')!.data);
  const back = toOfficial(hf);
  assert.equal(back.naming, 'hf-dinov2');
  assert.deepEqual(diffStateDicts(back.stateDict, sd), []);
});

test('SwiGLU, registers, dinov2. prefix + classifier, [1,1,D] mask token', () => {
  const c = small({ ffnLayer: 'swiglufused', numRegisterTokens: 4 });
  const sd = synth(c);
  assert.deepEqual(sd.get('blocks.0.mlp.w12.weight')!.shape, [2 * swigluHidden(128, 4), 128]);
  const hf = fromOfficial(sd, c, 'hf');
  assert.ok(hf.has('encoder.layer.0.mlp.weights_in.weight') && hf.has('embeddings.register_tokens'));
  const prefixed: StateDict = new Map([...hf].map(([k, v]) => [`dinov2.${k}`, v]));
  const mt = prefixed.get('dinov2.embeddings.mask_token')!;
  prefixed.set('dinov2.embeddings.mask_token', { ...mt, shape: [1, 1, 128] });
  prefixed.set('classifier.weight', { dtype: 'float32', shape: [2, 256], data: new Float32Array(512) });
  const back = toOfficial(prefixed);
  assert.equal(back.naming, 'hf-dinov2-registers');
  assert.deepEqual(back.ignored, ['classifier.weight']);
  assert.deepEqual(diffStateDicts(back.stateDict, sd), []);
  const cfg = detectConfig(back.stateDict, { numHeads: 2 });
  assert.equal(cfg.ffnLayer, 'swiglufused');
  assert.equal(cfg.mlpRatio, 4);
  assert.equal(cfg.numRegisterTokens, 4);
  assert.equal(cfg.posEmbedInterpolation, 'size_antialias');
});

test('DINOv2 training checkpoint: module./backbone. prefixes, chunked blocks, dino_head with parametrizations names', () => {
  const c = small({ depth: 4 });
  const sd = synth(c);
  const train: StateDict = new Map();
  for (const [k, v] of sd) {
    const m = /^blocks\.(\d+)\.(.*)$/.exec(k);
    // block_chunks=2: blocks 0,1 in chunk 0, blocks 2,3 in chunk 1
    train.set(`module.backbone.${m ? `blocks.${Math.floor(Number(m[1]) / 2)}.${m[1]}.${m[2]}` : k}`, v);
  }
  const t = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(shape[0]!) });
  train.set('module.dino_head.mlp.0.weight', t([64, 128]));
  train.set('module.dino_head.mlp.0.bias', t([64]));
  train.set('module.dino_head.mlp.2.weight', t([16, 64]));
  train.set('module.dino_head.mlp.2.bias', t([16]));
  train.set('module.dino_head.last_layer.parametrizations.weight.original0', t([10, 1]));
  train.set('module.dino_head.last_layer.parametrizations.weight.original1', t([10, 16]));
  train.set('module.ibot_head.mlp.0.weight', t([4, 4]));
  const out = toOfficial(train);
  assert.equal(out.naming, 'training');
  assert.equal(out.family, 'dinov2');
  assert.deepEqual(diffStateDicts(out.stateDict, sd), []);
  assert.deepEqual([...out.head!.keys()], ['mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias', 'last_layer.weight_g', 'last_layer.weight_v']);
  assert.deepEqual(out.ignored, ['ibot_head.mlp.0.weight']);
  assert.deepEqual(detectHeadOptions(out.head!), { inDim: 128, hiddenDim: 64, bottleneckDim: 16, outDim: 10, nlayers: 2, useBn: false, mlpBias: true });
});

test('config detection: heads = D/64 when D is a multiple of 64; ViT port eps; config files next to the checkpoint', async (t) => {
  const c = small({ embedDim: 192, numHeads: 3 });
  const sd = synth(c);
  const detected = detectConfig(sd);
  assert.deepEqual(detected, { ...c, dropPathUniform: true });
  // DINO v1 (no mask token, no layer scale) as a HF ViTModel port: eps 1e-12
  const v1: ViTConfig = { ...c, family: 'dino', initValues: null, posEmbedInterpolation: 'scale_factor', dropPathUniform: false };
  const v1sd = synth(v1);
  const hfv = toOfficial(fromOfficial(v1sd, v1, 'hf'));
  assert.equal(hfv.naming, 'hf-vit');
  assert.equal(detectConfig(hfv.stateDict, { naming: hfv.naming }).layerNormEps, 1e-12);

  const dir = tempDir(t);
  const tiny = small({ embedDim: 48, numHeads: 3 });
  const tsd = synth(tiny);
  const file = join(dir, 'tiny.safetensors');
  saveSafetensors(file, tsd); // no config in metadata
  await assert.rejects(loadBackboneWeights(file), /--num-heads/);
  writeFileSync(`${file}.json`, JSON.stringify({ numHeads: 3 }));
  assert.equal((await loadBackboneWeights(file)).config.numHeads, 3);
  // an HF folder with config.json
  const hfDir = join(dir, 'hf');
  mkdirSync(hfDir);
  saveSafetensors(join(hfDir, 'model.safetensors'), fromOfficial(tsd, tiny, 'hf'));
  writeFileSync(join(hfDir, 'config.json'), JSON.stringify({ model_type: 'dinov2', hidden_size: 48, num_attention_heads: 4, layer_norm_eps: 1e-5 }));
  const w = await loadBackboneWeights(hfDir);
  assert.equal(w.naming, 'hf-dinov2');
  assert.equal(w.config.numHeads, 4);
  assert.equal(w.config.layerNormEps, 1e-5);
  assert.deepEqual(diffStateDicts(w.stateDict, tsd), []);
});
