// `npm run bench -- dino-step [--config default|vits16|all] [--batch N] [--steps N] [--threads N] [--no-torch] [--profile] [--json]`
// Throughput (images/s) of one full DINO v1 training iteration (teacher forward, student forward + backward over all
// crops, DINO loss, per-parameter clipping, AdamW, EMA, center update) with our DinoTrainer on the chosen backend,
// and of the same step in PyTorch (bench/torch_dino_step.py, Debian python3-torch) in the same invocation; prints the
// ratio. Configs: `default` = the model and crops of `dinots train` on MNIST; `vits16` = ViT-S/16 with 2x224 + 10x96
// crops, K=65536, batch 2 (fits 24 GB).
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { tf, type Tensor } from '../src/backend/tf.js';
import { initBackend, type BackendName } from '../src/backend/select.js';
import { DINOLoss } from '../src/ssl/dino_loss.js';
import { DEFAULT_CONFIG, backboneConfig, type TrainConfig } from '../src/train/config.js';
import { DinoTrainer } from '../src/train/dino_trainer.js';
import { buildNetworks, disposeNetworks } from '../src/train/networks.js';
import { printKernelProfile, runTorchBaseline } from './baseline.js';

interface StepConfig {
  name: string;
  cfg: TrainConfig;
}

function configs(which: string, batch?: number): StepConfig[] {
  const def: StepConfig = { name: 'default (dinots train on MNIST)', cfg: { ...DEFAULT_CONFIG, ...(batch ? { batch_size_per_gpu: batch } : {}) } };
  const vits: StepConfig = {
    name: 'ViT-S/16, 2x224 + 10x96',
    cfg: {
      ...DEFAULT_CONFIG, arch: 'vit_small', patch_size: 16, global_crop_size: 224, local_crop_size: 96, local_crops_number: 10,
      out_dim: 65536, head_hidden_dim: 2048, head_bottleneck_dim: 256, batch_size_per_gpu: batch ?? 2,
    },
  };
  if (which === 'default') return [def];
  if (which === 'vits16') return [vits];
  if (which === 'all') return [def, vits];
  throw new Error(`--config must be default, vits16 or all (got '${which}')`);
}

function torchStep(c: TrainConfig, steps: number, threads: number): { images_per_s: number; step_ms: number } | null {
  const v = backboneConfig(c);
  return runTorchBaseline('bench/torch_dino_step.py', ['--img', v.imgSize, '--patch', v.patchSize, '--embed-dim', v.embedDim, '--depth', v.depth,
    '--heads', v.numHeads, '--out-dim', c.out_dim, '--hidden', c.head_hidden_dim, '--bottleneck', c.head_bottleneck_dim,
    '--batch', c.batch_size_per_gpu, '--global-size', c.global_crop_size, '--local-size', c.local_crop_size,
    '--local-crops', c.local_crops_number, '--drop-path', c.drop_path_rate, '--steps', steps, '--threads', threads]);
}

/** Median seconds per DINO step of our trainer on random crops. */
function oursStep(c: TrainConfig, steps: number, doProfile: boolean): Promise<{ images_per_s: number; step_ms: number }> {
  const nets = buildNetworks(c);
  const ncrops = 2 + c.local_crops_number;
  const total = steps + 2;
  const loss = new DINOLoss({ outDim: c.out_dim, ncrops, warmupTeacherTemp: 0.04, teacherTemp: 0.04, warmupTeacherTempEpochs: 0, nepochs: 1 });
  const trainer = new DinoTrainer({
    student: nets.student, teacher: nets.teacher, loss, clipGrad: 3, freezeLastLayer: 0,
    schedules: { lr: new Float64Array(total).fill(5e-4), wd: new Float64Array(total).fill(0.04), momentum: new Float64Array(total).fill(0.996) },
  });
  trainer.syncTeacherFromStudent();
  const B = c.batch_size_per_gpu;
  const sizes = [c.global_crop_size, c.global_crop_size, ...Array<number>(c.local_crops_number).fill(c.local_crop_size)];
  const crops: Tensor[] = sizes.map((s, i) => tf.randomNormal([B, 3, s, s], 0, 1, 'float32', i));
  const times: number[] = [];
  for (let i = 0; i < total - 1; i++) {
    const t0 = performance.now();
    trainer.step(crops, i, 0);
    if (i >= 1) times.push(performance.now() - t0); // the first step sets up kernels and buffers
  }
  const run = async () => {
    if (doProfile) await printKernelProfile(() => trainer.step(crops, total - 1, 0), 'one step', 15, 24);
    tf.dispose(crops);
    trainer.optimizer.dispose();
    loss.dispose();
    disposeNetworks(nets);
    times.sort((a, b) => a - b);
    const med = times[Math.floor(times.length / 2)]!;
    return { images_per_s: (1000 * B) / med, step_ms: med };
  };
  return run();
}

export async function main(argv: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', default: 'all' },
      batch: { type: 'string' },
      steps: { type: 'string', default: '3' },
      threads: { type: 'string', default: '2' },
      backend: { type: 'string', default: 'native' },
      'no-torch': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const backend = await initBackend(o.backend as BackendName);
  const steps = Number(o.steps);
  const rows: Record<string, unknown>[] = [];
  for (const { name, cfg } of configs(o.config!, o.batch ? Number(o.batch) : undefined)) {
    const load0 = loadavg()[0]!;
    const ours = await oursStep(cfg, steps, o.profile!);
    const torch = o['no-torch'] ? null : torchStep(cfg, steps, Number(o.threads));
    const ratio = torch ? ours.images_per_s / torch.images_per_s : null;
    const crops = `2x${cfg.global_crop_size} + ${cfg.local_crops_number}x${cfg.local_crop_size}`;
    console.log(
      `${name}: ${cfg.arch}${cfg.arch.startsWith('vit_nano') ? '' : `/${cfg.patch_size}`}, batch ${cfg.batch_size_per_gpu}, crops ${crops}, K=${cfg.out_dim}\n` +
        `  dinots (${backend}): ${ours.images_per_s.toFixed(2)} images/s (${ours.step_ms.toFixed(0)} ms/step)\n` +
        (torch ? `  PyTorch (${o.threads} threads): ${torch.images_per_s.toFixed(2)} images/s (${torch.step_ms.toFixed(0)} ms/step)\n  ratio dinots/PyTorch: ${ratio!.toFixed(2)}` : '  PyTorch: not run') +
        `  (load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}; other processes slow both sides)`,
    );
    rows.push({ config: name, backend, batch: cfg.batch_size_per_gpu, crops, out_dim: cfg.out_dim, ours, torch, ratio });
  }
  if (o.json) console.log(JSON.stringify(rows));
}
