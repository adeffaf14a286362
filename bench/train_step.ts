// `npm run bench -- train-step [--model NAME] [--batch N] [--iters N] [--rounds N] [--threads N] [--precision f32|bf16]
//    [--profile] [--no-torch] [--no-ort] [--json]`
// Times our VisionTransformer (forward, and forward + backward + AdamW) on the native backend, and the same shapes
// in PyTorch (bench/torch_vit.py) and, forward only, in onnxruntime-node when it is installed (bench/ort_forward.ts),
// and prints ratios and GFLOP/s. With --json the last line is one JSON object.
// --precision bf16: our bf16 matmuls against PyTorch under torch.autocast(bfloat16), both mixed precision.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { tf, type Tensor } from '../src/backend/tf.js';
import { variableGrads } from '../src/backend/grads.js';
import { initBackend, setMatmulPrecision, type BackendName, type MatmulPrecision } from '../src/backend/select.js';
import { adamwStep } from '../src/backend/adamw_kernel.js';
import { nativeAddon } from '../src/backend/native/register.js';
import { namedConfig, type ViTConfig } from '../src/models/config.js';
import { VisionTransformer } from '../src/models/vit.js';
import { printKernelProfile, runTorchBaseline } from './baseline.js';
import { openOrtForward, type OrtForward } from './ort_forward.js';
import { trainStepFlops, vitForwardFlops } from './vit_flops.js';

export interface BenchModel {
  name: string;
  config: ViTConfig;
  batch: number;
}

/** The default set: ViT-S/16 (the headline figure), ViT-S/14 at 224 and a tiny CPU-training config. */
function defaultModels(batch?: number): BenchModel[] {
  return [
    { name: 'dino_vits16', config: namedConfig('dino_vits16'), batch: batch ?? 8 },
    { name: 'dinov2_vits14@224', config: { ...namedConfig('dinov2_vits14'), imgSize: 224 }, batch: batch ?? 8 },
    { name: 'vit_nano_p4_28', config: namedConfig('vit_nano_p4_28'), batch: batch ?? 64 },
  ];
}

export function parseModel(name: string, batch?: number): BenchModel {
  const [base, size] = name.split('@');
  const config = namedConfig(base!);
  if (size) config.imgSize = Number(size);
  if (!Number.isInteger(config.imgSize) || config.imgSize <= 0) throw new Error(`--model ${name}: image size after @ must be a positive integer`);
  return { name, config, batch: batch ?? (config.imgSize <= 64 ? 64 : 8) };
}

function stats(times: number[]) {
  const s = [...times].sort((a, b) => a - b);
  return { best: s[0]!, median: s[Math.floor(s.length / 2)]! };
}

/**
 * Best and median wall ms, the best CPU ms of this process (all threads) per iteration, and the cores this process
 * got (CPU time / wall time). CPU ms is the figure that survives other jobs' load, for equal thread counts.
 */
function timeIt(fn: () => void, warmup: number, iters: number) {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [], cpu: number[] = [];
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage(), t = performance.now();
    fn();
    times.push(performance.now() - t);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const share = cpu.reduce((a, b) => a + b, 0) / times.reduce((a, b) => a + b, 0);
  return { ...stats(times), cpu: Math.min(...cpu), share };
}

/**
 * `timeIt(ours)` with a second contender timed in alternation with it (ours, theirs, ours, ...), so that both see the
 * same minute of this VM's drifting speed; best and median wall ms of the other one.
 */
async function timeAlternating(ours: () => void, theirs: () => Promise<void>, warmup: number, iters: number) {
  const other: number[] = [];
  for (let i = 0; i < warmup; i++) {
    ours();
    await theirs();
  }
  const runs = [];
  for (let i = 0; i < iters; i++) {
    runs.push(timeIt(ours, 0, 1));
    const t = performance.now();
    await theirs();
    other.push(performance.now() - t);
  }
  const times = runs.map((r) => r.best);
  const share = runs.reduce((a, r) => a + r.share * r.best, 0) / times.reduce((a, b) => a + b, 0);
  return { ours: { ...stats(times), cpu: Math.min(...runs.map((r) => r.cpu)), share }, theirs: stats(other) };
}

interface TorchTimes { forward_ms: number; train_step_ms: number; forward_cpu_ms: number; train_step_cpu_ms: number; peak_rss_mb: number }

/**
 * OpenBLAS 0.3.21 does not recognise this VM's CPU ("Intel Xeon Processor") and falls back to its Prescott (SSE3)
 * kernels: ~25 GFLOP/s per core instead of ~105. For a fair baseline pick the kernel set from the CPU flags.
 */
function openblasCoretype(): string | undefined {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1]?.split(/\s+/) ?? [];
    if (flags.includes('avx512_bf16')) return 'Cooperlake';
    if (flags.includes('avx512f')) return 'SkylakeX';
    if (flags.includes('avx2')) return 'Haswell';
  } catch {
    /* not Linux: let OpenBLAS decide */
  }
  return undefined;
}

/** bench/torch_vit.py's flags for the shapes of `m`. */
function torchShapeArgs(m: BenchModel): (string | number)[] {
  const c = m.config;
  return ['--img', c.imgSize, '--patch', c.patchSize, '--dim', c.embedDim, '--depth', c.depth, '--heads', c.numHeads, '--batch', m.batch];
}

/** Runs bench/torch_vit.py with the same thread count (OpenMP and OpenBLAS's own pool), passive waiting. */
export function torchBaseline(m: BenchModel, threads: number, iters: number, bf16: boolean): TorchTimes | null {
  const args = [...torchShapeArgs(m), '--threads', threads, '--iters', iters, ...(bf16 ? ['--bf16'] : [])];
  return runTorchBaseline<TorchTimes>('bench/torch_vit.py', args, torchEnv(threads));
}

/** The environment of a PyTorch baseline: `threads` OpenBLAS threads, its kernels picked from the CPU flags, passive OpenMP waiting. */
export function torchEnv(threads: number): NodeJS.ProcessEnv {
  const coretype = openblasCoretype();
  return {
    OPENBLAS_NUM_THREADS: String(threads),
    ...(coretype ? { OPENBLAS_CORETYPE: coretype } : {}),
    ...process.env, // an explicit OPENBLAS_* setting wins
    OMP_WAIT_POLICY: 'PASSIVE',
  };
}

interface BenchOptions { iters: number; rounds: number; threads: number; profile: boolean; torch: boolean; ort: boolean; bf16: boolean }

/** Our ViT with seeded weights, AdamW state and fixed inputs: `forward` (no grad) and `trainStep` (fwd + bwd + AdamW). */
export function vitStepHarness(c: ViTConfig, batch: number) {
  const model = new VisionTransformer(c, { seed: 0 });
  const params = [...model.trainableParameters().values()];
  const mState = params.map((p) => tf.variable(tf.zerosLike(p), false));
  const vState = params.map((p) => tf.variable(tf.zerosLike(p), false));
  const x = tf.randomNormal([batch, c.inChans, c.imgSize, c.imgSize], 0, 1, 'float32', 1);
  const r = tf.randomNormal([batch, c.embedDim], 0, 1, 'float32', 2);
  let t = 0;
  const forward = () => {
    model.eval();
    tf.tidy(() => model.forward(x).dataSync());
  };
  const trainStep = () => {
    model.train();
    const { value, grads } = variableGrads(() => tf.sum(tf.mul(model.forward(x), r)) as tf.Scalar, params);
    // Parameters outside the forward graph (DINOv2's mask_token without masks) get no gradient and no update.
    const used = params.map((p, i) => i).filter((i) => grads[params[i]!.name] !== undefined);
    const pick = <T>(xs: T[]) => used.map((i) => xs[i]!);
    adamwStep(pick(params), used.map((i) => grads[params[i]!.name] as Tensor), pick(mState), pick(vState), 1e-4, 0.04, 0.9, 0.999,
      1e-8, ++t);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const dispose = () => {
    tf.dispose([x, r, ...mState, ...vState]);
    model.dispose();
  };
  return { forward, trainStep, dispose };
}

/** Our forward (alternated with ORT's when open) and train step, then PyTorch's: one round, close in time. */
async function benchRound(m: BenchModel, o: BenchOptions, h: ReturnType<typeof vitStepHarness>, ort: OrtForward | null) {
  let ortTimes: { best: number; median: number } | null = null;
  let fwd: ReturnType<typeof timeIt>;
  if (ort) {
    const both = await timeAlternating(h.forward, ort.run, 1, o.iters);
    fwd = both.ours;
    ortTimes = both.theirs;
  } else {
    fwd = timeIt(h.forward, 1, o.iters);
  }
  const step = timeIt(h.trainStep, 1, o.iters);
  const torch = o.torch ? torchBaseline(m, o.threads, o.iters, o.bf16) : null;
  return { fwd, step, torch, ortTimes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function benchModel(m: BenchModel, o: BenchOptions) {
  const c = m.config;
  const h = vitStepHarness(c, m.batch);
  // ORT runs float32 only: it is the forward target of the float32 comparison. Timed in alternation with ours.
  const ort: OrtForward | null =
    o.ort && !o.bf16 ? await openOrtForward(torchShapeArgs(m), [m.batch, c.inChans, c.imgSize, c.imgSize], o.threads) : null;
  const load0 = loadavg()[0]!;
  // The VM's speed drifts by ±20% over minutes: each round times ours and the baselines back to back, and the ratios
  // reported are the median of the rounds' ratios (times are the best of all rounds).
  const rounds: Awaited<ReturnType<typeof benchRound>>[] = [];
  for (let r = 0; r < o.rounds; r++) rounds.push(await benchRound(m, o, h, ort));
  await ort?.close();
  const load1 = loadavg()[0]!;
  // Peak RSS of this process so far (every model benchmarked before this one included: run one --model to compare).
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  if (o.profile) await printKernelProfile(h.trainStep, 'one train step', 20, 22);
  h.dispose();
  const best = (f: (r: (typeof rounds)[number]) => number | undefined) => {
    const xs = rounds.map(f).filter((x): x is number => x !== undefined);
    return xs.length ? Math.min(...xs) : null;
  };
  const medianOf = (f: (r: (typeof rounds)[number]) => number | null) => {
    const xs = rounds.map(f).filter((x): x is number => x !== null);
    return xs.length ? median(xs) : null;
  };
  const fwdBest = best((r) => r.fwd.best)!, stepBest = best((r) => r.step.best)!;
  const torchTimes = rounds.map((r) => r.torch).filter((t): t is TorchTimes => t !== null);
  const fFlops = vitForwardFlops(c, m.batch), sFlops = trainStepFlops(c, m.batch);
  return {
    model: m.name, batch: m.batch, img: c.imgSize, rounds: rounds.length,
    forward_ms: fwdBest, forward_median_ms: median(rounds.map((r) => r.fwd.median)),
    train_step_ms: stepBest, train_step_median_ms: median(rounds.map((r) => r.step.median)),
    forward_gflops: fFlops / fwdBest / 1e6, train_step_gflops: sFlops / stepBest / 1e6,
    torch_forward_ms: best((r) => r.torch?.forward_ms), torch_train_step_ms: best((r) => r.torch?.train_step_ms),
    forward_ratio: medianOf((r) => (r.torch ? r.fwd.best / r.torch.forward_ms : null)),
    train_step_ratio: medianOf((r) => (r.torch ? r.step.best / r.torch.train_step_ms : null)),
    train_step_ratios: rounds.map((r) => (r.torch ? r.step.best / r.torch.train_step_ms : null)),
    ort_forward_ms: best((r) => r.ortTimes?.best), ort_forward_median_ms: medianOf((r) => r.ortTimes?.median ?? null),
    forward_ort_ratio: medianOf((r) => (r.ortTimes ? r.fwd.best / r.ortTimes.best : null)),
    forward_ort_ratios: rounds.map((r) => (r.ortTimes ? r.fwd.best / r.ortTimes.best : null)), ort_version: ort?.version ?? null,
    forward_cpu_ms: Math.min(...rounds.map((r) => r.fwd.cpu)), train_step_cpu_ms: Math.min(...rounds.map((r) => r.step.cpu)),
    torch_forward_cpu_ms: torchTimes.length ? Math.min(...torchTimes.map((t) => t.forward_cpu_ms)) : null,
    torch_train_step_cpu_ms: torchTimes.length ? Math.min(...torchTimes.map((t) => t.train_step_cpu_ms)) : null,
    peak_rss_mb: peakRssMB, peak_rss_includes_ort: ort !== null, torch_peak_rss_mb: torchTimes.length ? Math.max(...torchTimes.map((t) => t.peak_rss_mb)) : null,
    cpu_share: median(rounds.map((r) => r.step.share)), loadavg_before: load0, loadavg_after: load1,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, batch: { type: 'string' }, iters: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' },
      backend: { type: 'string' }, precision: { type: 'string' }, profile: { type: 'boolean' }, 'no-torch': { type: 'boolean' }, 'no-ort': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const batch = values.batch === undefined ? undefined : Number(values.batch);
  if (batch !== undefined && !(Number.isInteger(batch) && batch > 0)) throw new Error(`--batch must be a positive integer (got ${values.batch})`);
  const iters = Number(values.iters ?? 5);
  const rounds = Number(values.rounds ?? 1);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error(`--rounds must be a positive integer (got ${values.rounds})`);
  if (values.threads) process.env.DINOTS_NUM_THREADS = values.threads; // read when the addon loads
  const backend = await initBackend((values.backend ?? 'native') as BackendName);
  const precision = (values.precision ?? 'f32') as MatmulPrecision;
  await setMatmulPrecision(precision);
  const threads = nativeAddon()?.getNumThreads() ?? 1;
  const models = values.model ? [parseModel(values.model, batch)] : defaultModels(batch);
  console.log(`backend ${backend}, matmul ${precision}, ${threads} threads, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const results = [];
  for (const m of models) {
    const res = await benchModel(m, {
      iters, rounds, threads, profile: values.profile ?? false, torch: !values['no-torch'], ort: !values['no-ort'], bf16: precision === 'bf16',
    });
    results.push(res);
    const ratio = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
    console.log(`${m.name} batch ${m.batch} @${m.config.imgSize}${rounds > 1 ? ` (${rounds} rounds; ratios are medians over the rounds)` : ''}:`);
    console.log(`  forward     ${res.forward_ms.toFixed(0)} ms [median ${res.forward_median_ms.toFixed(0)}] ${res.forward_gflops.toFixed(0)} GFLOP/s` +
      ` | torch ${res.torch_forward_ms?.toFixed(0) ?? 'n/a'} ms | ratio ${ratio(res.forward_ratio)}` +
      (res.ort_forward_ms === null ? '' : ` | onnxruntime-node ${res.ort_forward_ms.toFixed(0)} ms | ratio ${ratio(res.forward_ort_ratio)}` +
        (rounds > 1 ? ` (rounds: ${res.forward_ort_ratios.map(ratio).join(' ')})` : '')));
    console.log(`  train step  ${res.train_step_ms.toFixed(0)} ms [median ${res.train_step_median_ms.toFixed(0)}] ${res.train_step_gflops.toFixed(0)} GFLOP/s` +
      ` | torch ${res.torch_train_step_ms?.toFixed(0) ?? 'n/a'} ms | ratio ${ratio(res.train_step_ratio)}` +
      (rounds > 1 ? ` (rounds: ${res.train_step_ratios.map(ratio).join(' ')})` : ''));
    console.log(`  CPU time    forward ${res.forward_cpu_ms.toFixed(0)} ms (torch ${res.torch_forward_cpu_ms?.toFixed(0) ?? 'n/a'}),` +
      ` train step ${res.train_step_cpu_ms.toFixed(0)} ms (torch ${res.torch_train_step_cpu_ms?.toFixed(0) ?? 'n/a'})`);
    console.log(`  peak RSS    ${res.peak_rss_mb.toFixed(0)} MB (torch ${res.torch_peak_rss_mb?.toFixed(0) ?? 'n/a'} MB; ours includes earlier models of this run${res.peak_rss_includes_ort ? ` and onnxruntime's session: --no-ort to compare` : ''})`);
    console.log(`  contention: this process used ${res.cpu_share.toFixed(2)} cores of ${threads}; load average ${res.loadavg_before.toFixed(2)} → ${res.loadavg_after.toFixed(2)}`);
  }
  if (values.json) console.log(JSON.stringify({ backend, precision, threads, ...results[0], models: results }));
}
