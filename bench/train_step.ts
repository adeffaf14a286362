// `npm run bench -- train-step [--model NAME] [--batch N] [--iters N] [--threads N] [--precision f32|bf16] [--profile]
//    [--no-torch] [--json]`
// Times our VisionTransformer (forward, and forward + backward + AdamW) on the native backend, and the same shapes
// in PyTorch (bench/torch_vit.py), and prints ratios and GFLOP/s. With --json the last line is one JSON object.
// --precision bf16: our bf16 matmuls against PyTorch under torch.autocast(bfloat16), both mixed precision.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { tf, type Tensor } from '../src/backend/tf.js';
import { initBackend, setMatmulPrecision, type BackendName, type MatmulPrecision } from '../src/backend/select.js';
import { adamwStep } from '../src/backend/adamw_kernel.js';
import { nativeAddon } from '../src/backend/native/register.js';
import { namedConfig, type ViTConfig } from '../src/models/config.js';
import { VisionTransformer } from '../src/models/vit.js';
import { printKernelProfile, runTorchBaseline } from './baseline.js';
import { trainStepFlops, vitForwardFlops } from './vit_flops.js';

interface BenchModel {
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

function parseModel(name: string, batch?: number): BenchModel {
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

/** Runs bench/torch_vit.py with the same thread count (OpenMP and OpenBLAS's own pool), passive waiting. */
function torchBaseline(m: BenchModel, threads: number, iters: number, bf16: boolean): TorchTimes | null {
  const c = m.config;
  const args = ['--img', c.imgSize, '--patch', c.patchSize, '--dim', c.embedDim, '--depth', c.depth,
    '--heads', c.numHeads, '--batch', m.batch, '--threads', threads, '--iters', iters, ...(bf16 ? ['--bf16'] : [])];
  const coretype = openblasCoretype();
  const env = {
    OPENBLAS_NUM_THREADS: String(threads),
    ...(coretype ? { OPENBLAS_CORETYPE: coretype } : {}),
    ...process.env, // an explicit OPENBLAS_* setting wins
    OMP_WAIT_POLICY: 'PASSIVE',
  };
  return runTorchBaseline<TorchTimes>('bench/torch_vit.py', args, env);
}

async function benchModel(m: BenchModel, o: { iters: number; threads: number; profile: boolean; torch: boolean; bf16: boolean }) {
  const c = m.config;
  const model = new VisionTransformer(c, { seed: 0 });
  const params = [...model.trainableParameters().values()];
  const mState = params.map((p) => tf.variable(tf.zerosLike(p), false));
  const vState = params.map((p) => tf.variable(tf.zerosLike(p), false));
  const x = tf.randomNormal([m.batch, c.inChans, c.imgSize, c.imgSize], 0, 1, 'float32', 1);
  const r = tf.randomNormal([m.batch, c.embedDim], 0, 1, 'float32', 2);
  let t = 0;
  const forward = () => {
    model.eval();
    tf.tidy(() => model.forward(x).dataSync());
  };
  const trainStep = () => {
    model.train();
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.forward(x), r)) as tf.Scalar, params);
    // Parameters outside the forward graph (DINOv2's mask_token without masks) get no gradient and no update.
    const used = params.map((p, i) => i).filter((i) => grads[params[i]!.name] !== undefined);
    const pick = <T>(xs: T[]) => used.map((i) => xs[i]!);
    adamwStep(pick(params), used.map((i) => grads[params[i]!.name] as Tensor), pick(mState), pick(vState), 1e-4, 0.04, 0.9, 0.999,
      1e-8, ++t);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const load0 = loadavg()[0]!;
  const fwd = timeIt(forward, 1, o.iters);
  const step = timeIt(trainStep, 1, o.iters);
  const load1 = loadavg()[0]!;
  // Peak RSS of this process so far (every model benchmarked before this one included: run one --model to compare).
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  if (o.profile) await printKernelProfile(trainStep, 'one train step', 20, 22);
  tf.dispose([x, r, ...mState, ...vState]);
  model.dispose();
  const torch = o.torch ? torchBaseline(m, o.threads, o.iters, o.bf16) : null;
  const fFlops = vitForwardFlops(c, m.batch), sFlops = trainStepFlops(c, m.batch);
  return {
    model: m.name, batch: m.batch, img: c.imgSize,
    forward_ms: fwd.best, forward_median_ms: fwd.median, train_step_ms: step.best, train_step_median_ms: step.median,
    forward_gflops: fFlops / fwd.best / 1e6, train_step_gflops: sFlops / step.best / 1e6,
    torch_forward_ms: torch?.forward_ms ?? null, torch_train_step_ms: torch?.train_step_ms ?? null,
    forward_ratio: torch ? fwd.best / torch.forward_ms : null, train_step_ratio: torch ? step.best / torch.train_step_ms : null,
    forward_cpu_ms: fwd.cpu, train_step_cpu_ms: step.cpu,
    torch_forward_cpu_ms: torch?.forward_cpu_ms ?? null, torch_train_step_cpu_ms: torch?.train_step_cpu_ms ?? null,
    peak_rss_mb: peakRssMB, torch_peak_rss_mb: torch?.peak_rss_mb ?? null,
    cpu_share: step.share, loadavg_before: load0, loadavg_after: load1,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, batch: { type: 'string' }, iters: { type: 'string' }, threads: { type: 'string' },
      backend: { type: 'string' }, precision: { type: 'string' }, profile: { type: 'boolean' }, 'no-torch': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
  const batch = values.batch === undefined ? undefined : Number(values.batch);
  if (batch !== undefined && !(Number.isInteger(batch) && batch > 0)) throw new Error(`--batch must be a positive integer (got ${values.batch})`);
  const iters = Number(values.iters ?? 5);
  if (values.threads) process.env.DINOTS_NUM_THREADS = values.threads; // read when the addon loads
  const backend = await initBackend((values.backend ?? 'native') as BackendName);
  const precision = (values.precision ?? 'f32') as MatmulPrecision;
  await setMatmulPrecision(precision);
  const threads = nativeAddon()?.getNumThreads() ?? 1;
  const models = values.model ? [parseModel(values.model, batch)] : defaultModels(batch);
  console.log(`backend ${backend}, matmul ${precision}, ${threads} threads, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const results = [];
  for (const m of models) {
    const res = await benchModel(m, { iters, threads, profile: values.profile ?? false, torch: !values['no-torch'], bf16: precision === 'bf16' });
    results.push(res);
    const ratio = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
    console.log(`${m.name} batch ${m.batch} @${m.config.imgSize}:`);
    console.log(`  forward     ${res.forward_ms.toFixed(0)} ms [median ${res.forward_median_ms.toFixed(0)}] ${res.forward_gflops.toFixed(0)} GFLOP/s` +
      ` | torch ${res.torch_forward_ms?.toFixed(0) ?? 'n/a'} ms | ratio ${ratio(res.forward_ratio)}`);
    console.log(`  train step  ${res.train_step_ms.toFixed(0)} ms [median ${res.train_step_median_ms.toFixed(0)}] ${res.train_step_gflops.toFixed(0)} GFLOP/s` +
      ` | torch ${res.torch_train_step_ms?.toFixed(0) ?? 'n/a'} ms | ratio ${ratio(res.train_step_ratio)}`);
    console.log(`  CPU time    forward ${res.forward_cpu_ms.toFixed(0)} ms (torch ${res.torch_forward_cpu_ms?.toFixed(0) ?? 'n/a'}),` +
      ` train step ${res.train_step_cpu_ms.toFixed(0)} ms (torch ${res.torch_train_step_cpu_ms?.toFixed(0) ?? 'n/a'})`);
    console.log(`  peak RSS    ${res.peak_rss_mb.toFixed(0)} MB (torch ${res.torch_peak_rss_mb?.toFixed(0) ?? 'n/a'} MB; ours includes earlier models of this run)`);
    console.log(`  contention: this process used ${res.cpu_share.toFixed(2)} cores of ${threads}; load average ${res.loadavg_before.toFixed(2)} → ${res.loadavg_after.toFixed(2)}`);
  }
  if (values.json) console.log(JSON.stringify({ backend, precision, threads, ...results[0], models: results }));
}
