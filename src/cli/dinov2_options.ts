// Shared CLI pieces of `dinots train --recipe dinov2` and `dinots distill`: config layers from --preset, --config
// (official-style YAML, applied in order) and --set section.key=value, plus the common flags (--data, --minutes, ...),
// and the end of a run (summary.json, report.html with an extra loss-terms chart, one result line).
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { matmulPrecision } from '../backend/select.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { disposeRunNetworks, type V2RunResult } from '../train/dinov2_run.js';
import { lineChartPng, readMetrics, smooth, writeReport } from '../train/report.js';
import { dottedOverrides, readYamlConfig, type YamlMap } from '../train/yaml_config.js';

export const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** Config layers from the CLI options, lowest precedence first: YAML files, common flags, --set. */
export function v2LayersFromCli(o: Record<string, unknown>, backend: string): YamlMap[] {
  const layers: YamlMap[] = ((o.config as string[] | undefined) ?? []).map(readYamlConfig);
  const run: YamlMap = { backend };
  if (o.data !== undefined) run.data = o.data as string;
  if (o.minutes !== undefined) run.minutes = o.minutes as number;
  else if (o.epochs !== undefined) run.minutes = null;
  if (o.knnTrain !== undefined) run.knn_train = o.knnTrain as string;
  if (o.knnTest !== undefined) run.knn_test = o.knnTest as string;
  // The v1 flags that are run settings here (run.* keys of the v2 config).
  for (const key of ['knn_train_size', 'knn_test_size', 'knn_evals', 'checkpoint_minutes'] as const) {
    if (o[key] !== undefined) run[key] = o[key] as number;
  }
  const flags: YamlMap = { run };
  const put = (section: string, key: string, v: unknown) => {
    if (v !== undefined) ((flags[section] ??= {}) as YamlMap)[key] = v as YamlMap[string];
  };
  put('student', 'arch', o.arch ?? o.studentArch);
  put('student', 'patch_size', o.patch_size ?? o.studentPatchSize);
  put('train', 'batch_size_per_gpu', o.batch_size_per_gpu);
  put('train', 'seed', o.seed);
  put('optim', 'epochs', o.epochs);
  put('crops', 'local_crops_number', o.local_crops_number);
  put('crops', 'global_crops_size', o.global_crop_size);
  put('crops', 'local_crops_size', o.local_crop_size);
  layers.push(flags);
  if (o.set) layers.push(dottedOverrides(o.set as string[]));
  return layers;
}

/**
 * The end of a `--recipe dinov2` or `distill` command: the run's outputs (writeV2Outputs), the networks freed, and the
 * exit code (130 interrupted, 1 non-finite loss).
 */
export async function finishV2Run(r: V2RunResult, recipe: string): Promise<void> {
  try {
    await writeV2Outputs(r, recipe);
  } finally {
    disposeRunNetworks(r.nets);
  }
  if (r.status === 'interrupted') process.exitCode = 130;
  if (r.status === 'nan') process.exitCode = 1;
}

/** summary.json, report.html (+ loss_terms.png: DINO / iBOT / KoLeo), and the result line on stdout. */
async function writeV2Outputs(r: V2RunResult, recipe: string): Promise<void> {
  const c = r.config;
  const initial = r.knn.find((k) => k.iteration === 0) ?? null;
  const final = r.status === 'done' ? r.knn.find((k) => k.iteration === r.iteration) ?? null : null;
  const metrics = r.iteration > 0 ? readMetrics(r.out) as unknown as Record<string, number>[] : [];
  const meanOf = (key: string, from: number, to: number) => {
    const xs = metrics.slice(from, to).map((m) => m[key]!).filter(Number.isFinite);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  };
  const tenth = Math.max(1, Math.floor(metrics.length / 10));
  const summary = {
    recipe,
    status: r.status,
    message: r.message ?? null,
    knn_top1_initial: initial?.top1 ?? null,
    knn_top1_final: final?.top1 ?? null,
    knn_top1_raw_pixels: r.knnRawPixels?.top1 ?? null,
    knn_top1_teacher: r.teacherKnn?.top1 ?? null,
    ibot_loss_first_tenth: meanOf('ibot_loss', 0, tenth),
    ibot_loss_last_tenth: meanOf('ibot_loss', metrics.length - tenth, metrics.length),
    steps: r.iteration,
    planned_steps: r.totalIterations,
    images_per_s: r.imagesPerSecond,
    train_seconds: r.trainSeconds,
    backend: r.backend,
    matmul_precision: matmulPrecision(),
    knn_history: r.knn,
    config: c,
  };
  writeFileSync(join(r.out, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  if (metrics.length) {
    const its = metrics.map((m) => m.it!);
    const w = Math.max(1, Math.round(metrics.length / 50));
    lineChartPng(join(r.out, 'loss_terms.png'), 'loss terms (smoothed)', [
      { label: 'DINO local', x: its, y: smooth(metrics.map((m) => m.dino_local_crops_loss!), w), color: '#c00' },
      { label: 'DINO global', x: its, y: smooth(metrics.map((m) => m.dino_global_crops_loss!), w), color: '#06c' },
      { label: 'iBOT (/2)', x: its, y: smooth(metrics.map((m) => m.ibot_loss!), w), color: '#090' },
      { label: 'KoLeo (/2)', x: its, y: smooth(metrics.map((m) => m.koleo_loss!), w), color: '#909' },
    ]);
    const result = r.nets.ema ?? r.nets.teacher;
    const att = c.run.knn_test ? await parseDatasetSpec(c.run.knn_test) : await parseDatasetSpec(c.run.data);
    const size = result.backbone.config.imgSize;
    const report = await writeReport({
      out: r.out, summary: Object.fromEntries(Object.entries(summary).filter(([k]) => k !== 'config')), knn: r.knn,
      rawPixelTop1: r.knnRawPixels?.top1 ?? null, outDim: c.dino.head_n_prototypes,
      attention: { backbone: result.backbone, dataset: att, cropSize: size, resizeSize: Math.round((size * 256) / 224) },
    });
    process.stderr.write(`report: ${report} (loss terms: ${join(r.out, 'loss_terms.png')})\n`);
  }
  const f = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}%`);
  process.stdout.write(
    `${r.status}: ${r.iteration} steps, ${r.imagesPerSecond.toFixed(1)} images/s on ${r.backend}; k-NN top-1 ${f(summary.knn_top1_initial)} -> ${f(summary.knn_top1_final)}` +
      `${r.teacherKnn ? ` (teacher ${f(r.teacherKnn.top1)})` : ''} (raw pixels ${f(summary.knn_top1_raw_pixels)}); ${join(r.out, 'summary.json')}\n`,
  );
}

/**
 * `dinots train --recipe dinov2`: MNIST (the default data) without --preset / --config uses the mnist-tiny preset;
 * like the DINO recipe, 10 minutes unless --minutes or --epochs.
 */
export async function runDinov2TrainCommand(o: Record<string, unknown>, backend: string): Promise<void> {
  const { trainDinov2Run } = await import('../train/dinov2_run.js');
  const data = (o.data as string | undefined) ?? 'mnist:train';
  const preset = (o.preset as string | undefined) ?? (data.startsWith('mnist:') && !o.config ? 'mnist-tiny' : null);
  const opts = { ...o, data, minutes: o.minutes ?? (o.epochs !== undefined ? undefined : 10) };
  const out = (o.out as string | undefined) ?? (o.resume ? undefined : join('runs', `dinov2-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  if (!out) throw new Error('--resume needs --out <run folder>');
  const r = await trainDinov2Run(preset, v2LayersFromCli(opts, backend), { out, resume: Boolean(o.resume) });
  await finishV2Run(r, 'dinov2');
}
