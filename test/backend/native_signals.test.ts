// oneDNN 2.6's float32 JIT GEMM points the stack register at a heap buffer for large K; a signal handled meanwhile
// wrote its frame into the heap ("corrupted size vs. prev_size", abort). The addon holds signals back around its
// matmuls (native/src/signal_guard.h): a child process, limited to AVX2 so that oneDNN uses that GEMM as it does on
// CPUs without AVX-512, survives a flood of signals and V8's CPU profiler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeSkip } from './native_helpers.js';

const child = new URL('./fixtures/matmul_under_signals.ts', import.meta.url).pathname;

test('native matmuls survive signals arriving during oneDNN GEMM (SIGUSR2 flood and the CPU profiler)', { skip: nativeSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-signals-'));
  try {
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--import', 'tsx', child, '3000'], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2' },
    });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr.slice(-500)}`);
    assert.equal(r.status, 0, r.stderr.slice(-500));
    assert.match(r.stdout, /^ok /, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
