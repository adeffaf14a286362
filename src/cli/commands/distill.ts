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
import { trainRun } from '../../train/run.js';
import { integer } from '../parsers.js';
import { addRunOptions, distillConfigSource, refuseConfigFlagsOnResume } from '../train_options.js';
import { finishCommand } from './train.js';

export function register(program: Command): void {
  const cmd = program
    .command('distill')
    .description('distill a frozen teacher (run folder or checkpoint) into a smaller ViT with the DINOv2 losses; the student EMA is the result')
    .option('--teacher <path>', 'teacher: a dinots run folder, or a checkpoint (.pth / .safetensors, official, HF or exported)')
    .option('--student-arch <name>', 'student architecture (vit_small, vit_base, vit_pico, vit_nano_p4_28, vit_micro_p4_28, ...)')
    .option('--student-patch-size <n>', 'student patch size (may differ from the teacher: global crops are resized so the patch grids match)', integer('--student-patch-size'))
    .option('--epochs <n>', 'plan by official-style epochs of train.OFFICIAL_EPOCH_LENGTH iterations instead of --minutes', integer('--epochs'))
    .option('--masking', 'mask the student global crops as in pretraining (default: no masking, iBOT over every patch, as the paper)');
  addRunOptions(cmd).action(async (o: Record<string, unknown>) => {
    const backend = program.opts().backend as string;
    refuseConfigFlagsOnResume(o);
    if (!o.resume && !o.teacher) throw new Error('--teacher <run folder or checkpoint> is required (or --resume --out RUN)');
    const out = (o.out as string | undefined) ?? (o.resume ? undefined : join('runs', `distill-${new Date().toISOString().replace(/[:.]/g, '-')}`));
    if (!out) throw new Error('--resume needs --out <run folder>');
    await finishCommand(await trainRun(o.resume ? {} : distillConfigSource(o, backend), { out, resume: Boolean(o.resume), backend }));
  });
}
