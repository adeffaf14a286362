// `dinots train`: DINO (v1) self-supervised training on your images, end to end.
//   dinots train                       10 minutes on the built-in MNIST, k-NN before/after vs raw pixels, report.html
//   dinots train --data DIR --knn-train DIR_A --knn-test DIR_B --minutes 30 --out RUN
//   dinots train --resume --out RUN    continue an interrupted run exactly
// The official main_dino.py argument names are accepted (--arch, --patch_size, --out_dim, --lr, --epochs, ...).
import type { Command } from 'commander';
import { matmulPrecision } from '../../backend/select.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasetSpec } from '../../data/datasets.js';
import type { TrainConfig } from '../../train/config.js';
import { writeReport } from '../../train/report.js';
import { disposeNetworks, trainRun, type RunResult } from '../../train/run.js';
import { collect, runDinov2TrainCommand } from '../dinov2_options.js';

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} expects a number, got '${v}'`);
  return n;
};
const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} expects an integer, got '${v}'`);
  return n;
};
const bool = (name: string) => (v: string) => {
  if (/^(true|1|yes|on)$/i.test(v)) return true;
  if (/^(false|0|no|off)$/i.test(v)) return false;
  throw new Error(`--${name} expects true or false, got '${v}'`);
};
const pair = (name: string) => (v: string, prev: number[] | undefined) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} expects two numbers, got '${v}'`);
  const out = prev && prev.length < 2 ? [...prev, n] : [n];
  return out;
};

/** Settings that fit natural-image folders better than the MNIST defaults (colour, 64 px global / 32 px local crops). */
const FOLDER_RECIPE: Partial<TrainConfig> = {
  arch: 'vit_micro_p8_64',
  patch_size: 8,
  global_crop_size: 64,
  local_crop_size: 32,
  color_augment: true,
  knn_train: null,
  knn_test: null,
};

/** Official names (snake_case) with their parsers; commander keeps the underscores as the option key. */
const OFFICIAL: [string, string, (v: string, prev?: any) => unknown][] = [
  ['arch', 'vit_tiny | vit_small | vit_base | vit_nano_p4_28 | vit_micro_p8_64 | vit_tiny_p16_96', String],
  ['patch_size', 'patch size', int('patch_size')],
  ['embed_dim', 'override the width of --arch', int('embed_dim')],
  ['depth', 'override the depth of --arch', int('depth')],
  ['num_heads', 'override the heads of --arch', int('num_heads')],
  ['out_dim', 'prototypes K of the DINO head', int('out_dim')],
  ['head_hidden_dim', 'DINO head hidden width (official 2048)', int('head_hidden_dim')],
  ['head_bottleneck_dim', 'DINO head bottleneck (official 256)', int('head_bottleneck_dim')],
  ['norm_last_layer', 'freeze weight_g of the last layer (true/false)', bool('norm_last_layer')],
  ['use_bn_in_head', 'BatchNorm in the head (true/false)', bool('use_bn_in_head')],
  ['momentum_teacher', 'base EMA momentum (cosine to 1)', num('momentum_teacher')],
  ['warmup_teacher_temp', 'initial teacher temperature', num('warmup_teacher_temp')],
  ['teacher_temp', 'final teacher temperature', num('teacher_temp')],
  ['warmup_teacher_temp_epochs', 'epochs of teacher temperature warm-up', int('warmup_teacher_temp_epochs')],
  ['lr', 'base lr at batch 256 (scaled by batch/256)', num('lr')],
  ['min_lr', 'final lr of the cosine', num('min_lr')],
  ['warmup_epochs', 'linear lr warm-up epochs (epoch-planned runs)', int('warmup_epochs')],
  ['weight_decay', 'initial weight decay', num('weight_decay')],
  ['weight_decay_end', 'final weight decay', num('weight_decay_end')],
  ['clip_grad', 'per-parameter gradient clip norm (0 = off)', num('clip_grad')],
  ['freeze_last_layer', 'epochs with a frozen last layer', int('freeze_last_layer')],
  ['batch_size_per_gpu', 'batch size', int('batch_size_per_gpu')],
  ['epochs', 'epochs (without --minutes: plan the schedules by epochs)', int('epochs')],
  ['local_crops_number', 'local crops per image', int('local_crops_number')],
  ['drop_path_rate', 'stochastic depth of the student', num('drop_path_rate')],
  ['seed', 'random seed', int('seed')],
  ['global_crop_size', 'global crop side in pixels', int('global_crop_size')],
  ['local_crop_size', 'local crop side in pixels', int('local_crop_size')],
  ['color_augment', 'colour jitter, grayscale, blur, solarize and flips of the official pipeline (true/false)', bool('color_augment')],
  ['warmup_fraction', 'time-planned runs: share of the steps for lr warm-up', num('warmup_fraction')],
  ['knn_train_size', 'k-NN bank size (subset of --knn-train)', int('knn_train_size')],
  ['knn_test_size', 'k-NN queries (subset of --knn-test)', int('knn_test_size')],
  ['knn_evals', 'k-NN evaluations during training besides start and end', int('knn_evals')],
  ['checkpoint_minutes', 'minutes between checkpoints', num('checkpoint_minutes')],
];

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('self-supervised DINO training on a dataset (default: 10 minutes on the built-in MNIST), with k-NN evaluation and a report')
    .option('--data <spec>', 'training images: a folder, list:FILE, or mnist:train[:N]', 'mnist:train')
    .option('--knn-train <spec>', 'labelled k-NN bank (folder with class subfolders, or mnist:train)')
    .option('--knn-test <spec>', 'labelled k-NN queries (folder with class subfolders, or mnist:test)')
    .option('--minutes <m>', 'training time budget; the schedules are planned from a measured step time (default 10 unless --epochs)', num('minutes'))
    .option('--out <dir>', 'run folder (default runs/<timestamp>)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--global_crops_scale <v...>', 'two numbers: scale range of the global crops', pair('global_crops_scale'))
    .option('--local_crops_scale <v...>', 'two numbers: scale range of the local crops', pair('local_crops_scale'))
    .option('--recipe <name>', 'dino (v1, main_dino.py) or dinov2 (SSLMetaArch: iBOT, KoLeo, layer decay; takes --preset/--config/--set)', 'dino')
    .option('--preset <name>', 'dinov2: config preset (mnist-tiny, mnist-small; default mnist-tiny on MNIST)')
    .option('--config <yaml>', 'dinov2: official-style YAML config (ssl_default_config.yaml keys; repeatable)', collect)
    .option('--set <section.key=value>', 'dinov2: one config value, e.g. --set ibot.separate_head=true (repeatable)', collect);
  for (const [name, help, parse] of OFFICIAL) cmd.option(`--${name} <v>`, help, parse as (v: string) => unknown);
  cmd.action(async (o: Record<string, unknown>) => {
    const backend = program.opts().backend as string;
    if (o.recipe !== 'dino' && o.recipe !== 'dinov2') throw new Error(`--recipe '${String(o.recipe)}' is unknown: use dino or dinov2`);
    if (o.recipe === 'dinov2') return runDinov2TrainCommand(o, backend);
    const data = (o.data as string) ?? 'mnist:train';
    const isMnist = data.startsWith('mnist:');
    const over: Partial<TrainConfig> = { ...(isMnist ? {} : FOLDER_RECIPE), data, backend };
    for (const [name] of OFFICIAL) if (o[name] !== undefined) (over as Record<string, unknown>)[name] = o[name];
    for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
      const v = o[k] as number[] | undefined;
      if (v !== undefined) {
        if (v.length !== 2) throw new Error(`--${k} expects two numbers (e.g. --${k} 0.4 1)`);
        over[k] = [v[0]!, v[1]!];
      }
    }
    if (o.knnTrain !== undefined) over.knn_train = o.knnTrain as string;
    if (o.knnTest !== undefined) over.knn_test = o.knnTest as string;
    over.minutes = o.minutes !== undefined ? (o.minutes as number) : o.epochs !== undefined ? null : 10;
    const out = (o.out as string | undefined) ?? (o.resume ? undefined : join('runs', new Date().toISOString().replace(/[:.]/g, '-')));
    if (!out) throw new Error('--resume needs --out <run folder>');

    const r = await trainRun(over, { out, resume: Boolean(o.resume) });
    try {
      await finish(r);
    } finally {
      disposeNetworks(r.networks);
    }
    if (r.status === 'interrupted') process.exitCode = 130;
    if (r.status === 'nan') process.exitCode = 1;
  });
}

async function finish(r: RunResult): Promise<void> {
  const c = r.config;
  const initial = r.knn.find((k) => k.iteration === 0) ?? null;
  const final = r.status === 'done' ? r.knn.find((k) => k.iteration === r.iteration) ?? null : null;
  const summary = {
    status: r.status,
    message: r.message ?? null,
    knn_top1_initial: initial?.top1 ?? null,
    knn_top1_final: final?.top1 ?? null,
    knn_top1_raw_pixels: r.knnRawPixels?.top1 ?? null,
    knn_top5_initial: initial?.top5 ?? null,
    knn_top5_final: final?.top5 ?? null,
    knn_protocol: `weighted k-NN on the teacher backbone CLS (L2-normalised, k=${c.knn_k}, T=${c.knn_temperature}); bank: ${c.knn_train_size} seeded images of ${c.knn_train}; queries: ${c.knn_test_size} seeded images of ${c.knn_test}; raw pixels = the same k-NN on the flattened normalised ${c.global_crop_size}px eval crops`,
    images_per_s: r.imagesPerSecond,
    loader_s_per_step: r.loaderSeconds,
    model_s_per_step: r.modelSeconds,
    steps: r.iteration,
    planned_steps: r.plan.total_iterations,
    epochs_done: r.iteration / r.plan.iters_per_epoch,
    train_seconds: r.trainSeconds,
    backend: r.backend,
    matmul_precision: matmulPrecision(),
    dataset: c.data,
    dataset_size: r.datasetSize,
    skipped_files: r.skippedFiles,
    arch: c.arch,
    minutes: c.minutes,
    batch_size: c.batch_size_per_gpu,
    crops: `2x${c.global_crop_size} + ${c.local_crops_number}x${c.local_crop_size}`,
    out_dim: c.out_dim,
    peak_lr: r.plan.peak_lr,
    knn_history: r.knn,
    config: c,
  };
  writeFileSync(join(r.out, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  if (r.iteration > 0) {
    const att = c.knn_test ? await parseDatasetSpec(c.knn_test) : await parseDatasetSpec(c.data);
    const report = await writeReport({
      out: r.out, summary: Object.fromEntries(Object.entries(summary).filter(([k]) => k !== 'config' && k !== 'knn_protocol')), knn: r.knn,
      rawPixelTop1: r.knnRawPixels?.top1 ?? null, outDim: c.out_dim,
      attention: { backbone: r.networks.teacher.backbone, dataset: att, cropSize: c.global_crop_size, resizeSize: Math.round((c.global_crop_size * 256) / 224) },
    });
    process.stderr.write(`report: ${report}\n`);
  }
  const f = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}%`);
  process.stdout.write(
    `${r.status}: ${r.iteration} steps, ${r.imagesPerSecond.toFixed(1)} images/s on ${r.backend}; k-NN top-1 ${f(summary.knn_top1_initial)} -> ${f(summary.knn_top1_final)} (raw pixels ${f(summary.knn_top1_raw_pixels)}); ${join(r.out, 'summary.json')}\n`,
  );
}
