// Every fixture checkpoint: the official .pth and the HF .safetensors give the same official state dict, configs are
// detected as the manifest says, and conversions round-trip bit-exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  detectConfig,
  fromOfficial,
  loadBackboneWeights,
  readCheckpoint,
  readStateDict,
  saveSafetensors,
  savePth,
  toOfficial,
} from '../../src/checkpoint/index.js';
import { CKPTS, diffStateDicts, FIXTURES, tempDir } from './helpers.js';

const manifestPath = join(FIXTURES, 'manifest.json');
const skip = !existsSync(manifestPath) && `no fixtures at ${FIXTURES}`;
interface Fx {
  config?: Record<string, unknown>;
  checkpoints?: Record<string, { file: string; external?: boolean; keys?: string[]; hf_config?: Record<string, unknown> }>;
}
const fixtures: Record<string, Fx> = skip ? {} : JSON.parse(readFileSync(manifestPath, 'utf8')).fixtures;
const BACKBONES = ['dino_tiny', 'dinov2_tiny', 'dinov2_tiny_reg4_ls', 'dinov2_tiny_swiglu'];

test('backbone fixtures: .pth and .hf.safetensors give identical official state dicts and configs', { skip }, async () => {
  for (const name of BACKBONES) {
    const cfg = fixtures[name]!.config as Record<string, number | string | null>;
    const heads = cfg.num_heads as number;
    const pth = await loadBackboneWeights(join(CKPTS, `${name}.pth`), { numHeads: heads });
    const hf = await loadBackboneWeights(join(CKPTS, `${name}.hf.safetensors`), { numHeads: heads });
    assert.equal(pth.naming, 'official');
    assert.equal(hf.naming, name === 'dino_tiny' ? 'hf-vit' : name.includes('reg4') ? 'hf-dinov2-registers' : 'hf-dinov2');
    assert.equal(pth.family, name.startsWith('dinov2') ? 'dinov2' : 'dino');
    assert.deepEqual(diffStateDicts(pth.stateDict, hf.stateDict), [], name);
    // official key order as listed by the manifest
    assert.deepEqual([...pth.stateDict.keys()], fixtures[name]!.checkpoints![`${name}.pth`]!.keys, name);
    const c = pth.config;
    assert.equal(c.imgSize, cfg.img_size);
    assert.equal(c.patchSize, cfg.patch_size);
    assert.equal(c.embedDim, cfg.embed_dim);
    assert.equal(c.depth, cfg.depth);
    assert.equal(c.numHeads, heads);
    assert.equal(c.mlpRatio, cfg.mlp_ratio);
    if (name.startsWith('dinov2')) {
      assert.equal(c.initValues, cfg.init_values);
      assert.equal(c.ffnLayer, cfg.ffn_layer);
      assert.equal(c.numRegisterTokens, cfg.num_register_tokens);
      assert.equal(c.interpolateOffset, cfg.interpolate_offset);
      assert.equal(c.posEmbedInterpolation, cfg.interpolate_antialias ? 'size_antialias' : 'scale_factor');
    }
  }
});

test('heads and training checkpoints map to official head names', { skip }, async () => {
  for (const name of ['dino_head', 'dinov2_head']) {
    const a = toOfficial(await readStateDict(join(CKPTS, `${name}.pth`)));
    const b = toOfficial(await readStateDict(join(CKPTS, `${name}.safetensors`)));
    assert.equal(a.family, null);
    assert.equal(a.head!.size, 8);
    assert.deepEqual(diffStateDicts(a.head!, b.head!), []);
  }
  const pth = toOfficial(await readStateDict(join(CKPTS, 'dino_train_step_init.pth')));
  const st = toOfficial(await readStateDict(join(CKPTS, 'dino_train_step_init.safetensors')));
  assert.equal(pth.naming, 'training');
  assert.equal(pth.family, 'dino');
  assert.equal(pth.stateDict.size, 30);
  assert.deepEqual([...pth.head!.keys()].sort(), ['last_layer.weight_g', 'last_layer.weight_v', 'mlp.0.bias', 'mlp.0.weight', 'mlp.2.bias', 'mlp.2.weight', 'mlp.4.bias', 'mlp.4.weight']);
  assert.deepEqual(diffStateDicts(pth.stateDict, st.stateDict), []);
  assert.deepEqual(diffStateDicts(pth.head!, st.head!), []);
  // the backbone inside the training checkpoint has the v1 tiny config
  assert.equal(detectConfig(pth.stateDict, { numHeads: 3 }).imgSize, 32);
});

test('without heads info the error says how to fix it; a wrong config names keys and shapes', { skip }, async () => {
  await assert.rejects(loadBackboneWeights(join(CKPTS, 'dino_tiny.pth')), /--num-heads/);
  await assert.rejects(loadBackboneWeights(join(CKPTS, 'dino_tiny.pth'), { numHeads: 5 }), /numHeads 5 does not divide embed dim 48/);
  await assert.rejects(
    loadBackboneWeights(join(CKPTS, 'dinov2_tiny.pth'), { numHeads: 2, config: { initValues: 1e-5, imgSize: 70 } }),
    (e: Error) => /missing keys: blocks\.0\.ls1\.gamma/.test(e.message) && /pos_embed: file \[1,17,48\] vs config \[1,26,48\]/.test(e.message),
  );
});

test('round trips: .pth → safetensors → .pth bit-exact; official → HF → official; HF names match the fixture HF file', { skip }, async (t) => {
  const dir = tempDir(t);
  for (const name of BACKBONES) {
    const heads = fixtures[name]!.config!.num_heads as number;
    const src = join(CKPTS, `${name}.pth`);
    const orig = readCheckpoint(src).stateDict;
    const w = await loadBackboneWeights(src, { numHeads: heads });
    saveSafetensors(join(dir, 'a.safetensors'), w.stateDict, {}, w.config);
    const viaSt = await loadBackboneWeights(join(dir, 'a.safetensors')); // config from metadata: no numHeads needed
    assert.deepEqual(viaSt.config, w.config);
    savePth(join(dir, 'b.pth'), viaSt.stateDict);
    assert.deepEqual(diffStateDicts(readCheckpoint(join(dir, 'b.pth')).stateDict, orig), [], name);
    // writing the same state dict twice gives the same bytes (the archive name comes from the file name)
    mkdirSync(join(dir, 'again'), { recursive: true });
    savePth(join(dir, 'again', 'b.pth'), readCheckpoint(join(dir, 'b.pth')).stateDict);
    assert.deepEqual(readFileSync(join(dir, 'again', 'b.pth')), readFileSync(join(dir, 'b.pth')));

    const hfNames = fromOfficial(w.stateDict, w.config, 'hf');
    const fixtureHf = readCheckpoint(join(CKPTS, `${name}.hf.safetensors`)).stateDict;
    assert.deepEqual(diffStateDicts(hfNames, fixtureHf), [], `${name} HF names`);
    assert.deepEqual(diffStateDicts(toOfficial(hfNames).stateDict, w.stateDict), [], `${name} HF → official`);
  }
});
