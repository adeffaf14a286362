// One process per run folder (src/train/run_lock.ts): a live owner refuses a second run with its pid, a lock whose
// process is gone is taken over, and a finished run leaves no lock behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock, LOCK_FILE } from '../../src/train/run_lock.js';
import { disposeRunNetworks, trainRun } from '../../src/train/run.js';
import { TINY } from './tiny.js';

const quiet = { progress: false, log: () => {}, handleSigint: false };
const lockOf = (pid: number) => `${JSON.stringify({ pid, host: hostname(), started: '2026-12-08T00:00:00.000Z' })}\n`;

test('a run folder held by a live process is refused with its pid; a lock whose process is gone is taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-lock-'));
  const sleeper = spawn('sleep', ['30']);
  try {
    const out = join(dir, 'run');
    const release = acquireRunLock(out, () => {}, true);
    assert.throws(() => acquireRunLock(out, () => {}, true), new RegExp(`being trained by process ${process.pid}`));
    release();
    assert.equal(existsSync(join(out, LOCK_FILE)), false);
    // Another live process owns it: trainRun stops before touching the folder.
    writeFileSync(join(out, LOCK_FILE), lockOf(sleeper.pid!));
    await assert.rejects(trainRun({ layers: [TINY] }, { out, ...quiet }), new RegExp(`being trained by process ${sleeper.pid}.*choose another --out`));
    assert.equal(existsSync(join(out, 'config.json')), false);
    // Its process is gone (kill -9, reboot): the next run takes the lock over, trains, and removes it at the end.
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r));
    const notes: string[] = [];
    const r = await trainRun({ layers: [TINY] }, { out, ...quiet, log: (s) => notes.push(s) });
    assert.equal(r.status, 'done');
    assert.ok(notes.some((n) => new RegExp(`taking over the lock of process ${sleeper.pid}, which is gone`).test(n)), notes.join('\n'));
    assert.equal(existsSync(join(out, LOCK_FILE)), false);
    disposeRunNetworks(r.nets);
  } finally {
    sleeper.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
