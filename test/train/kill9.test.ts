// kill -9 during a checkpoint write leaves the previous checkpoint loadable: a child process rewrites a 16 MB
// checkpoint in a loop and is killed at random moments; the file on disk is always one complete version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainCheckpoint } from '../../src/train/run_checkpoint.js';

const root = new URL('../..', import.meta.url).pathname;

function killDuringWrites(path: string, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/train/checkpoint_writer.ts'), path], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let saved = 0;
    let armed = false;
    child.stdout.on('data', (d: Buffer) => {
      const m = [...d.toString().matchAll(/saved (\d+)/g)];
      if (m.length) saved = Number(m[m.length - 1]![1]);
      if (saved >= 2 && !armed) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(saved) : reject(new Error(`writer exited without being killed (${signal})`))));
  });
}

test('kill -9 during checkpoint writes never leaves a torn checkpoint', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-kill9-'));
  try {
    const path = join(dir, 'checkpoint.safetensors');
    for (const delay of [3, 17, 41]) {
      const lastReported = await killDuringWrites(path, delay);
      const ck = loadTrainCheckpoint(path);
      const i = ck.progress.iteration;
      assert.ok(i >= lastReported, `checkpoint version ${i} is older than the last completed write ${lastReported}`);
      for (const part of [ck.student, ck.teacher, ck.optimizer, ck.center]) {
        const w = part.get('w')!.data as Float32Array;
        assert.ok(w.every((v) => v === i), `tensor values do not all equal the checkpoint's iteration ${i}: torn write`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
