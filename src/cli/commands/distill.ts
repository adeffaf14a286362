// `dinots distill`: train a small ViT from a frozen larger teacher with the DINOv2 losses (DINO + iBOT + KoLeo);
// the student's EMA is the result (distilled_backbone.safetensors / .pth in the run folder).
//   dinots distill --teacher runs/big --preset mnist-tiny --masking --set optim.base_lr=0.016 --minutes 5 --out runs/small
//   dinots distill --teacher dinov2_vits14.pth --student-arch vit_pico --student-patch-size 8 --data DIR --minutes 30 --out RUN
//   dinots distill --resume --out RUN
// The teacher: a dinots DINOv2 or DINO run folder (trained heads and centers are used), any checkpoint `dinots info`
// reads (official .pth, HF safetensors, exported backbones; backbone-only files get frozen seeded heads), see
// src/train/distill.ts for the reasoning.
import type { Command } from 'commander';
import { join } from 'node:path';
import { distillRun } from '../../train/distill.js';
import { V2_PRESETS } from '../../train/dinov2_config.js';
import { collect, finishV2Run, v2LayersFromCli } from '../dinov2_options.js';

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} expects a number, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('distill')
    .description('distill a frozen teacher (run folder or checkpoint) into a smaller ViT with the DINOv2 losses; the student EMA is the result')
    .option('--teacher <path>', 'teacher: a dinots run folder, or a checkpoint (.pth / .safetensors, official, HF or exported)')
    .option('--student-arch <name>', 'student architecture (vit_small, vit_base, vit_pico, vit_nano_p4_28, vit_micro_p4_28, ...)')
    .option('--student-patch-size <n>', 'student patch size (may differ from the teacher: global crops are resized so the patch grids match)', num('student-patch-size'))
    .option('--data <spec>', 'training images: a folder, list:FILE, or mnist:train[:N]')
    .option('--minutes <m>', 'training time budget (schedules planned from a measured step time)', num('minutes'))
    .option('--epochs <n>', 'plan by official-style epochs of train.OFFICIAL_EPOCH_LENGTH iterations instead of --minutes', num('epochs'))
    .option('--knn-train <spec>', 'labelled k-NN bank')
    .option('--knn-test <spec>', 'labelled k-NN queries')
    .option('--preset <name>', `config preset (${Object.keys(V2_PRESETS).join(', ')}); default: the official ssl_default_config values`)
    .option('--config <yaml>', 'official-style YAML config merged over the preset (repeatable, applied in order)', collect)
    .option('--set <section.key=value>', 'one config value, e.g. --set optim.base_lr=0.001 (repeatable)', collect)
    .option('--masking', 'mask the student global crops as in pretraining (default: no masking, iBOT over every patch, as the paper)')
    .option('--out <dir>', 'run folder (default runs/distill-<timestamp>)')
    .option('--resume', 'continue the distillation in --out')
    .action(async (o: Record<string, unknown>) => {
      const backend = program.opts().backend as string;
      if (!o.resume && !o.teacher) throw new Error('--teacher <run folder or checkpoint> is required (or --resume --out RUN)');
      const out = (o.out as string | undefined) ?? (o.resume ? undefined : join('runs', `distill-${new Date().toISOString().replace(/[:.]/g, '-')}`));
      if (!out) throw new Error('--resume needs --out <run folder>');
      const r = await distillRun((o.preset as string | undefined) ?? null, v2LayersFromCli(o, backend), { teacher: (o.teacher as string) ?? '', masking: Boolean(o.masking) }, { out, resume: Boolean(o.resume) });
      await finishV2Run(r, 'distill');
    });
}
