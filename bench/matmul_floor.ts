// `npm run bench -- matmul-floor [--model NAME] [--batch N] [--iters N] [--json]`
// How fast can a float32 ViT training step be on this machine? Records every matmul that one of our training steps
// issues (forward, backward, attention), then times each call alone: through our addon (oneDNN) and as torch.matmul
// (OpenBLAS) on the same shapes and layouts. The sum, taking the faster library for each call, is a floor for any
// float32 step built on these GEMMs: everything else in the step (LayerNorm, GELU, softmax, AdamW, ...) only adds.
// Printed next to our step and PyTorch's step from the same run, it says which step-time targets are reachable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend/select.js';
import { nativeAddon } from '../src/backend/native/register.js';
import type { NativeAddon } from '../src/backend/native/addon.js';
import { runTorchBaseline } from './baseline.js';
import { parseModel, torchBaseline, torchEnv, vitStepHarness } from './train_step.js';

interface MatmulCall { bA: number; bB: number; M: number; K: number; N: number; transA: boolean; transB: boolean; bias: boolean; act: number }

const flops = (c: MatmulCall) => 2 * Math.max(c.bA, c.bB) * c.M * c.K * c.N;

/** The matmul calls of one `step()`, in order, recorded by wrapping the addon's matmul. */
function recordMatmuls(addon: NativeAddon, step: () => void): MatmulCall[] {
  const calls: MatmulCall[] = [];
  const matmul = addon.matmul;
  addon.matmul = (a, b, out, bA, bB, M, K, N, transA, transB, bias, act, alpha, cache) => {
    calls.push({ bA, bB, M, K, N, transA, transB, bias: bias !== null, act });
    matmul.call(addon, a, b, out, bA, bB, M, K, N, transA, transB, bias, act, alpha, cache);
  };
  try {
    step();
  } finally {
    addon.matmul = matmul;
  }
  return calls;
}

/** Best wall ms of each call alone through the addon, on random operands of its sizes. */
function timeOurs(addon: NativeAddon, calls: MatmulCall[], iters: number): number[] {
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  return calls.map((c) => {
    const a = rand(c.bA * c.M * c.K), b = rand(c.bB * c.K * c.N), out = new Float32Array(Math.max(c.bA, c.bB) * c.M * c.N);
    const bias = c.bias ? rand(c.N) : null;
    const run = () => addon.matmul(a, b, out, c.bA, c.bB, c.M, c.K, c.N, c.transA, c.transB, bias, c.act, 0.2);
    run();
    let best = Infinity;
    for (let i = 0; i < iters; i++) {
      const t = performance.now();
      run();
      best = Math.min(best, performance.now() - t);
    }
    return best;
  });
}

function timeTorch(calls: MatmulCall[], threads: number, iters: number): number[] | null {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-mm-'));
  try {
    const file = join(dir, 'calls.json');
    writeFileSync(file, JSON.stringify(calls));
    return runTorchBaseline<{ best_ms: number[] }>('bench/torch_matmul_replay.py', [file, '--threads', threads, '--iters', iters], torchEnv(threads))?.best_ms ?? null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, batch: { type: 'string' }, iters: { type: 'string' }, json: { type: 'boolean' } },
  });
  const iters = Number(values.iters ?? 5);
  const m = parseModel(values.model ?? 'dino_vits16', values.batch === undefined ? undefined : Number(values.batch));
  if ((await initBackend('native')) !== 'native') throw new Error('matmul-floor needs the native backend (npm run build:native)');
  const addon = nativeAddon()!;
  const threads = addon.getNumThreads();
  const h = vitStepHarness(m.config, m.batch);
  h.trainStep(); // warm-up: primitive creation, buffer pool
  const calls = recordMatmuls(addon, h.trainStep);
  const stepTimes: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    h.trainStep();
    stepTimes.push(performance.now() - t);
  }
  h.dispose();
  const ours = timeOurs(addon, calls, iters);
  const torchMm = timeTorch(calls, threads, iters);
  const torchStep = torchBaseline(m, threads, iters, false);

  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const gflop = sum(calls.map(flops)) / 1e9;
  const oursMs = sum(ours), torchMmMs = torchMm ? sum(torchMm) : null;
  const floorMs = torchMm ? sum(ours.map((t, i) => Math.min(t, torchMm[i]!))) : oursMs;
  const stepMs = Math.min(...stepTimes), torchStepMs = torchStep?.train_step_ms ?? null;
  const rate = (ms: number) => `${(gflop / ms * 1e3).toFixed(0)} GFLOP/s`;
  console.log(`${m.name} batch ${m.batch}: one float32 train step issues ${calls.length} matmuls, ${gflop.toFixed(1)} GFLOP; ${threads} threads`);
  console.log(`  our whole step                     ${stepMs.toFixed(0)} ms`);
  console.log(`  its matmuls alone, ours (oneDNN)   ${oursMs.toFixed(0)} ms  ${rate(oursMs)}`);
  if (torchMmMs !== null) console.log(`  same matmuls, torch.matmul         ${torchMmMs.toFixed(0)} ms  ${rate(torchMmMs)}`);
  console.log(`  floor (faster library per call)    ${floorMs.toFixed(0)} ms  ${rate(floorMs)}`);
  if (torchStepMs !== null) {
    console.log(`  PyTorch's whole step               ${torchStepMs.toFixed(0)} ms; 0.8× of it is ${(0.8 * torchStepMs).toFixed(0)} ms`);
    console.log(`  floor / PyTorch step = ${(floorMs / torchStepMs).toFixed(2)}: a float32 step cannot be faster than this ratio here`);
  }
  // The largest calls, to show which shapes run below the machine's rate.
  const rows = calls.map((c, i) => ({ c, ours: ours[i]!, torch: torchMm?.[i] ?? null })).sort((a, b) => b.ours - a.ours).slice(0, 8);
  console.log('  largest calls (batch×M×K×N, transposes): ours / torch ms, ours GFLOP/s');
  for (const r of rows) {
    const { c } = r;
    console.log(`    ${Math.max(c.bA, c.bB)}×${c.M}×${c.K}×${c.N}${c.transA ? ' Aᵀ' : ''}${c.transB ? ' Bᵀ' : ''}`.padEnd(30) +
      `${r.ours.toFixed(2)} / ${r.torch?.toFixed(2) ?? 'n/a'}  ${(flops(c) / r.ours / 1e6).toFixed(0)}`);
  }
  if (values.json) {
    console.log(JSON.stringify({
      model: m.name, batch: m.batch, threads, matmuls: calls.length, gflop, train_step_ms: stepMs, matmul_ours_ms: oursMs,
      matmul_torch_ms: torchMmMs, matmul_floor_ms: floorMs, torch_train_step_ms: torchStepMs,
      floor_over_torch_step: torchStepMs === null ? null : floorMs / torchStepMs,
    }));
  }
}
