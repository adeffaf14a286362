// The end of a run's folder, for every recipe: summary.json (k-NN before / after / raw pixels, throughput, the plan,
// the config) and report.html (loss, lr, collapse monitors, loss terms, k-NN, attention maps of the result backbone).
import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { matmulPrecision } from '../backend/select.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { lineChartPng, readMetrics, smooth, writeReport } from './report.js';
import type { RunResult } from './run.js';
import type { Log } from './run_loop.js';

type FinishedRun = Omit<RunResult, 'summary'>;

/** The final evaluation's figures, flat (`full_knn_top1.<feature>`), plus the attention score before and after. */
function evaluationSummary(r: FinishedRun): Record<string, unknown> {
  const ev = r.evaluation;
  const out: Record<string, unknown> = {
    attention_jaccard_initial: r.attentionInitial?.meanHeads ?? null,
    attention_jaccard_final: ev?.attention[0]?.score.meanHeads ?? null,
  };
  if (!ev) return out;
  return {
    ...out,
    full_knn_protocol: ev.protocol,
    full_knn_top1: Object.fromEntries(ev.knn.map((k) => [k.label, k.top1])),
    linear_probe: ev.linear,
    attention_final: ev.attention.map((a) => ({ backbone: a.label, jaccard_mean_heads: a.score.meanHeads, jaccard_best_head: a.score.bestHeadJaccard, images: a.score.images, mass: a.score.mass })),
    attention_initial: r.attentionInitial,
    final_eval_seconds: ev.seconds,
  };
}

export function runSummary(r: FinishedRun): Record<string, unknown> {
  const c = r.config;
  const initial = r.knn.find((k) => k.iteration === 0) ?? null;
  const final = r.status === 'done' ? r.knn.find((k) => k.iteration === r.iteration) ?? null : null;
  const metrics = r.iteration > 0 ? readMetrics(r.out) : [];
  const meanOf = (key: 'ibot_loss', from: number, to: number) => {
    const xs = metrics.slice(from, to).map((m) => m[key]).filter(Number.isFinite);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  };
  const tenth = Math.max(1, Math.floor(metrics.length / 10));
  const distilling = c.distill.teacher !== null;
  return {
    recipe: distilling ? 'distill' : c.recipe,
    status: r.status,
    message: r.message ?? null,
    knn_top1_initial: initial?.top1 ?? null,
    knn_top1_final: final?.top1 ?? null,
    knn_top1_raw_pixels: r.knnRawPixels?.top1 ?? null,
    knn_top1_teacher: r.teacherKnn?.top1 ?? null,
    knn_top5_initial: initial?.top5 ?? null,
    knn_top5_final: final?.top5 ?? null,
    knn_protocol: `weighted k-NN on the ${distilling ? 'student EMA' : 'teacher'} backbone CLS (L2-normalised, k=${c.run.knn_k}, T=${c.run.knn_temperature}); bank: ${c.run.knn_train_size} seeded images of ${c.run.knn_train}; queries: ${c.run.knn_test_size} seeded images of ${c.run.knn_test}; raw pixels = the same k-NN on the flattened normalised ${r.nets.studentGlobalSize}px eval crops`,
    ibot_loss_first_tenth: c.ibot.loss_weight > 0 ? meanOf('ibot_loss', 0, tenth) : null,
    ibot_loss_last_tenth: c.ibot.loss_weight > 0 ? meanOf('ibot_loss', metrics.length - tenth, metrics.length) : null,
    images_per_s: r.imagesPerSecond,
    // The machine's cores, all of which the run's replicas (data_parallel) and loader workers share.
    images_per_s_per_core: r.imagesPerSecond / availableParallelism(),
    cores: availableParallelism(),
    data_parallel: c.run.data_parallel,
    loader_s_per_step: r.loaderSeconds,
    model_s_per_step: r.modelSeconds,
    steps: r.iteration,
    planned_steps: r.plan.total_iterations,
    epochs_done: r.iteration / r.plan.iters_per_data_epoch,
    train_seconds: r.trainSeconds,
    backend: r.backend,
    matmul_precision: matmulPrecision(),
    dataset: c.run.data,
    dataset_size: r.datasetSize,
    skipped_files: r.skippedFiles,
    arch: c.student.arch,
    minutes: c.run.minutes,
    batch_size: c.train.batch_size_per_gpu,
    batch_size_all_replicas: c.train.batch_size_per_gpu * c.run.data_parallel,
    crops: `2x${c.crops.global_crops_size} + ${c.crops.local_crops_number}x${c.crops.local_crops_size}`,
    out_dim: c.dino.head_n_prototypes,
    peak_lr: c.optim.lr,
    knn_history: r.knn,
    ...evaluationSummary(r),
    config: c,
  };
}

/** Writes summary.json and (after at least one step) report.html with its charts; returns the summary. */
export async function writeRunOutputs(r: FinishedRun, log: Log): Promise<Record<string, unknown>> {
  const summary = runSummary(r);
  writeFileSync(join(r.out, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  if (r.iteration === 0) return summary;
  const c = r.config;
  const metrics = readMetrics(r.out);
  const its = metrics.map((m) => m.it);
  const w = Math.max(1, Math.round(metrics.length / 50));
  const terms = [
    { label: 'DINO local', key: 'dino_local_crops_loss', color: '#c00', on: c.dino.loss_weight > 0 && c.crops.local_crops_number > 0 },
    { label: 'DINO global', key: 'dino_global_crops_loss', color: '#06c', on: c.dino.loss_weight > 0 },
    { label: 'iBOT (/2)', key: 'ibot_loss', color: '#090', on: c.ibot.loss_weight > 0 },
    { label: 'KoLeo (/2)', key: 'koleo_loss', color: '#909', on: c.dino.koleo_loss_weight > 0 },
  ] as const;
  lineChartPng(join(r.out, 'loss_terms.png'), 'loss terms (smoothed)',
    terms.filter((t) => t.on).map((t) => ({ label: t.label, x: its, y: smooth(metrics.map((m) => m[t.key]), w), color: t.color })));
  const result = r.nets.ema ?? r.nets.teacher;
  const att = await parseDatasetSpec(c.run.knn_test ?? c.run.data);
  const size = result.backbone.config.imgSize;
  const report = await writeReport({
    out: r.out, summary: Object.fromEntries(Object.entries(summary).filter(([k]) => k !== 'config' && k !== 'knn_protocol')), knn: r.knn, evaluation: r.evaluation,
    attentionInitial: r.attentionInitial,
    rawPixelTop1: r.knnRawPixels?.top1 ?? null, outDim: c.dino.head_n_prototypes,
    attention: { backbone: result.backbone, dataset: att, cropSize: size, resizeSize: Math.round((size * 256) / 224) },
  });
  log(`report: ${report} (loss terms: ${join(r.out, 'loss_terms.png')})`);
  return summary;
}
