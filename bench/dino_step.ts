// `npm run bench -- dino-step [--config default|vits16|all] [--batch N] [--steps N] [--threads N] [--no-torch] [--profile] [--json]`
// Throughput (images/s) of one full DINO v1 training iteration (teacher forward, student forward + backward over all
// crops, DINO loss, per-parameter clipping, AdamW, EMA, center update) with our SSLTrainer (DINO recipe) on the chosen backend,
// and of the same step in PyTorch (bench/torch_dino_step.py, Debian python3-torch) in the same invocation; prints the
// ratio. Configs: `default` = the model and crops of `dinots train` on MNIST; `vits16` = ViT-S/16 with 2x224 + 10x96
// crops, K=65536, batch 2 (fits 24 GB).
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { tf, type Tensor } from '../src/backend/tf.js';
import { initBackend, type BackendName } from '../src/backend/select.js';
import { backboneConfig, type SSLConfig } from '../src/train/config.js';
import { resolveConfig, type ConfigLayer } from '../src/train/config_layers.js';
import { buildNetworks, disposeNetwork } from '../src/train/networks.js';
import { frozenSchedules } from '../src/train/plan.js';
import { SSLTrainer, trainerPolicies, type SSLBatch } from '../src/train/trainer.js';
import { printKernelProfile, runTorchBaseline } from './baseline.js';

interface StepConfig {
  name: string;
  cfg: SSLConfig;
}

function configs(which: string, batch?: number): StepConfig[] {
  const dino = (layer: ConfigLayer) => resolveConfig({ recipe: 'dino', layers: [layer] });
  const def: StepConfig = { name: 'default (dinots train on MNIST)', cfg: dino(batch ? { batch_size_per_gpu: batch } : {}) };
  const vits: StepConfig = {
    name: 'ViT-S/16, 2x224 + 10x96',
    cfg: dino({
      arch: 'vit_small', patch_size: 16, embed_dim: null, depth: null, num_heads: null, global_crop_size: 224, local_crop_size: 96, local_crops_number: 10,
      out_dim: 65536, head_hidden_dim: 2048, head_bottleneck_dim: 256, batch_size_per_gpu: batch ?? 2,
    }),
  };
  if (which === 'default') return [def];
  if (which === 'vits16') return [vits];
  if (which === 'all') return [def, vits];
  throw new Error(`--config must be default, vits16 or all (got '${which}')`);
}

function torchStep(c: SSLConfig, steps: number, threads: number): { images_per_s: number; step_ms: number } | null {
  const v = backboneConfig(c);
  return runTorchBaseline('bench/torch_dino_step.py', ['--img', v.imgSize, '--patch', v.patchSize, '--embed-dim', v.embedDim, '--depth', v.depth,
    '--heads', v.numHeads, '--out-dim', c.dino.head_n_prototypes, '--hidden', c.dino.head_hidden_dim, '--bottleneck', c.dino.head_bottleneck_dim,
    '--batch', c.train.batch_size_per_gpu, '--global-size', c.crops.global_crops_size, '--local-size', c.crops.local_crops_size,
    '--local-crops', c.crops.local_crops_number, '--drop-path', c.student.drop_path_rate, '--steps', steps, '--threads', threads]);
}

/** Median seconds per DINO step of our trainer on random crops. */
function oursStep(c: SSLConfig, steps: number, doProfile: boolean): Promise<{ images_per_s: number; step_ms: number }> {
  const nets = buildNetworks(c);
  const total = steps + 2;
  const k = (v: number) => ({ at: () => v });
  const trainer = new SSLTrainer({
    student: nets.student, teacher: nets.teacher, policies: { ...trainerPolicies(c), clipGrad: 3 },
    schedules: { ...frozenSchedules(0.04), lr: k(5e-4), lastLayerLr: k(5e-4), wd: k(0.04), momentum: k(0.996) },
  });
  trainer.syncEmaFromStudent();
  const B = c.train.batch_size_per_gpu;
  const { global_crops_size: G, local_crops_size: L, local_crops_number: nLocal } = c.crops;
  const batch: SSLBatch = {
    global: tf.randomNormal([2 * B, 3, G, G], 0, 1, 'float32', 0),
    local: nLocal > 0 ? tf.randomNormal([nLocal * B, 3, L, L], 0, 1, 'float32', 1) : null,
    nLocal, masks: null,
  };
  const times: number[] = [];
  for (let i = 0; i < total - 1; i++) {
    const t0 = performance.now();
    trainer.step(batch, i);
    if (i >= 1) times.push(performance.now() - t0); // the first step sets up kernels and buffers
  }
  const run = async () => {
    if (doProfile) await printKernelProfile(() => trainer.step(batch, total - 1), 'one step', 15, 24);
    tf.dispose([batch.global, ...(batch.local ? [batch.local] : [])] as Tensor[]);
    trainer.dispose();
    disposeNetwork(nets.student);
    disposeNetwork(nets.teacher);
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
    const crops = `2x${cfg.crops.global_crops_size} + ${cfg.crops.local_crops_number}x${cfg.crops.local_crops_size}`;
    const arch = cfg.student.arch;
    console.log(
      `${name}: ${arch}${arch.startsWith('vit_nano') ? '' : `/${cfg.student.patch_size}`}, batch ${cfg.train.batch_size_per_gpu}, crops ${crops}, K=${cfg.dino.head_n_prototypes}\n` +
        `  dinots (${backend}): ${ours.images_per_s.toFixed(2)} images/s (${ours.step_ms.toFixed(0)} ms/step)\n` +
        (torch ? `  PyTorch (${o.threads} threads): ${torch.images_per_s.toFixed(2)} images/s (${torch.step_ms.toFixed(0)} ms/step)\n  ratio dinots/PyTorch: ${ratio!.toFixed(2)}` : '  PyTorch: not run') +
        `  (load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}; other processes slow both sides)`,
    );
    rows.push({ config: name, backend, batch: cfg.train.batch_size_per_gpu, crops, out_dim: cfg.dino.head_n_prototypes, ours, torch, ratio });
  }
  if (o.json) console.log(JSON.stringify(rows));
}
