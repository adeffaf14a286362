// SIGTERM (what schedulers and `kill` send) stops `dinots train` like Ctrl-C: the running step finishes, a checkpoint
// is saved, the process exits with the interrupted status, and --resume continues from that checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainCheckpoint } from '../../src/train/run_checkpoint.js';

const root = new URL('../..', import.meta.url).pathname;

test('SIGTERM finishes the step, saves a resumable checkpoint and exits as interrupted', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-sigterm-'));
  try {
    const out = join(dir, 'run');
    const args = ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'train', '--data', 'mnist:train:48', '--epochs', '500', '--batch_size_per_gpu', '8',
      '--embed_dim', '16', '--depth', '1', '--num_heads', '2', '--global_crop_size', '8', '--local_crop_size', '4', '--local_crops_number', '2',
      '--out_dim', '32', '--head_hidden_dim', '16', '--head_bottleneck_dim', '8', '--knn_train_size', '100', '--knn_test_size', '50', '--knn_evals', '0',
      '--final_eval', 'false', '--set', 'run.num_workers=0', '--out', out];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DINOTS_BACKEND: 'cpu' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const metrics = join(out, 'metrics.jsonl');
    const timer = setInterval(() => {
      if (existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 3) {
        clearInterval(timer);
        child.kill('SIGTERM');
      }
    }, 100);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearInterval(timer);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGTERM: finishing this step, saving a checkpoint/);
    const steps = readFileSync(metrics, 'utf8').trim().split('\n').length;
    assert.equal(loadTrainCheckpoint(join(out, 'checkpoint.safetensors')).progress.iteration, steps, 'the checkpoint holds every finished step');
    assert.match(stderr, /continue with: .*--resume/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
