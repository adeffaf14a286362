// `dinots info` and `dinots convert` end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint, saveSafetensors } from '../../src/checkpoint/index.js';
import type { StateDict } from '../../src/checkpoint/types.js';
import { CKPTS, diffStateDicts, tempDir } from './helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const skip = !existsSync(CKPTS) && `no fixture checkpoints at ${CKPTS}`;

function dinots(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('dinots info --json and dinots convert (.pth → HF safetensors → official .pth)', { skip }, (t) => {
  const dir = tempDir(t);
  const info = dinots('info', join(CKPTS, 'dino_train_step_init.pth'), '--json', '--num-heads', '3');
  assert.equal(info.code, 0, info.err);
  const r = JSON.parse(info.out);
  assert.equal(r.format, 'pth');
  assert.equal(r.naming, 'training');
  assert.equal(r.family, 'dino');
  assert.deepEqual(r.parameters, { backbone: 66768, head: 13600, file: 80368 });
  assert.equal(r.config.numHeads, 3);
  assert.equal(r.config.imgSize, 32);

  const hf = join(dir, 'v2.safetensors');
  const c1 = dinots('convert', join(CKPTS, 'dinov2_tiny_swiglu.pth'), hf, '--naming', 'hf', '--num-heads', '2', '--hf-config', join(dir, 'config.json'));
  assert.equal(c1.code, 0, c1.err);
  assert.deepEqual(diffStateDicts(readCheckpoint(hf).stateDict, readCheckpoint(join(CKPTS, 'dinov2_tiny_swiglu.hf.safetensors')).stateDict), []);
  const back = join(dir, 'back.pth');
  const c2 = dinots('convert', hf, back); // heads from the dinots_config metadata
  assert.equal(c2.code, 0, c2.err);
  assert.deepEqual(diffStateDicts(readCheckpoint(back).stateDict, readCheckpoint(join(CKPTS, 'dinov2_tiny_swiglu.pth')).stateDict), []);

  const bad = dinots('convert', join(CKPTS, 'dino_tiny.pth'), join(dir, 'x.safetensors'));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--num-heads/);
});

test('dinots info on a valid checkpoint that holds no DINO model: every tensor grouped, and a plain statement', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'other.safetensors');
  const f32 = (n: number) => new Float32Array(n);
  saveSafetensors(file, new Map([
    ['encoder.layer1.weight', { dtype: 'float32', shape: [4, 3], data: f32(12) }],
    ['encoder.layer1.bias', { dtype: 'float32', shape: [4], data: f32(4) }],
    ['classifier.weight', { dtype: 'float32', shape: [2, 4], data: f32(8) }],
  ]) as StateDict);
  const text = dinots('info', file);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /family +none recognised: this is not a DINO or DINOv2 backbone or head/);
  assert.match(text.out, /encoder \(2\)\n {4}encoder\.layer1\.weight {2}float32 \[4, 3\]/);
  assert.match(text.out, /tensors +3, 24 values/);
  const json = JSON.parse(dinots('info', file, '--json').out);
  assert.equal(json.recognised, false);
  assert.deepEqual(json.tensors[2], { name: 'classifier.weight', dtype: 'float32', shape: [2, 4] });
});
