// loadViT: a model and head built from a checkpoint's detected config, with the file's weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/select.js';
import { readCheckpoint, toOfficial } from '../../src/checkpoint/index.js';
import { loadViT } from '../../src/checkpoint/load_model.js';
import { CKPTS, diffStateDicts } from './helpers.js';

const skip = !existsSync(CKPTS) && `no fixture checkpoints at ${CKPTS}`;

test('loadViT builds the model and head of a DINO training checkpoint and an HF DINOv2 file', { skip }, async () => {
  await initBackend('cpu');
  const file = join(CKPTS, 'dino_train_step_init.pth');
  const { model, head, config, headOptions } = await loadViT(file, { numHeads: 3 });
  const want = toOfficial(readCheckpoint(file).stateDict);
  assert.equal(config.family, 'dino');
  assert.deepEqual(diffStateDicts(model.stateDict(), want.stateDict), []);
  assert.ok(head);
  assert.equal(headOptions!.outDim, 128);
  assert.deepEqual(diffStateDicts(head.stateDict(), want.head!), []);
  model.dispose();
  head.dispose();

  const hf = await loadViT(join(CKPTS, 'dinov2_tiny_reg4_ls.hf.safetensors'), { numHeads: 2 });
  assert.equal(hf.config.numRegisterTokens, 4);
  assert.deepEqual(diffStateDicts(hf.model.stateDict(), readCheckpoint(join(CKPTS, 'dinov2_tiny_reg4_ls.pth')).stateDict), []);
  hf.model.dispose();

  await assert.rejects(loadViT(file, { numHeads: 3, config: { depth: 3 } }), /missing keys: blocks\.2\./);
});
