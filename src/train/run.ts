// A training run in a folder, for every recipe (DINO, DINOv2, distillation):
//   run.lock                 the pid of the process training it (run_lock.ts), while it trains
//   config.json              the resolved config (config.ts), written when the run starts
//   checkpoint.safetensors   sections student / teacher / optimizer / dino_loss (both centers) + progress metadata,
//                            written atomically (run_checkpoint.ts); when distilling the `teacher` section holds the
//                            student's EMA (the frozen teacher is re-read from distill.teacher on resume)
//   checkpoint.prev.safetensors   the checkpoint before (--resume falls back to it when the latest is damaged)
//   metrics.jsonl            one line per iteration (loss terms, schedules, collapse monitors, timings)
//   knn.jsonl                k-NN top-1 of the result backbone at the evaluation points
//   teacher_backbone.{pth,safetensors} (distilled_backbone.* when distilling)   the result backbone, at the end
//   summary.json, report.html (+ PNGs)    run_summary.ts, at the end
// Batches are pure functions of (seed, data epoch, index), the masks of (seed, iteration), and the drop-path RNG state
// is saved, so --resume continues with the identical loss sequence. Checkpoints are written every
// `checkpoint_minutes`, at data-epoch ends, at the end and on SIGINT / SIGTERM (the running step is finished first).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { backendLabel, initBackend, setBackendThreads, type BackendName } from '../backend/select.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { MultiCropLoader, type MultiCropBatch } from '../data/loader.js';
import { DataAugmentationDINO, dinoV1Augmentation, dinoV2Augmentation, type MultiCropConfig } from '../data/multicrop.js';
import { batchBuilder } from './batches.js';
import type { SSLConfig } from './config.js';
import { resolveConfig, type ConfigLayer, type ConfigSource } from './config_layers.js';
import { DataParallel, dataParallelStep } from './data_parallel.js';
import { KnnMonitor, features, knnScore, prepareKnnSplit, type KnnPoint } from './knn_monitor.js';
import { atLogK } from './monitors.js';
import { loadNetworkState, networkState, parameterCount } from './networks.js';
import { buildSchedules, frozenSchedules, isReplanPoint, planRun, replanByTime, type Plan } from './plan.js';
import { TrainProgressBar } from './progress.js';
import { acquireRunLock } from './run_lock.js';
import { CHECKPOINT_FILE, loadResumeCheckpoint, saveTrainCheckpoint, type TrainProgress } from './run_checkpoint.js';
import {
  appendJsonLine, batchesFrom, keepJsonLines, createRunFolder, exportBackbone, freshProgress, readRunFolderConfig,
  runSteps, stderrLog, CALIBRATION_STEPS, plannedStepSeconds, type RunOptions,
} from './run_loop.js';
import { writeRunOutputs } from './run_summary.js';
import { folderRecipeFor } from './folder_recipe.js';
import { PRESETS } from './presets.js';
import { attentionProbe, attentionScore, finalEvaluation } from './run_eval.js';
import type { RunEvaluation } from '../eval/run_evaluation.js';
import type { ObjectAttentionScore } from '../eval/object_attention.js';
import { buildRunNetworks, disposeRunNetworks, type RunNetworks } from './run_networks.js';
import { SSLTrainer, trainerPolicies, type StepResult } from './trainer.js';

export interface RunResult {
  status: 'done' | 'interrupted' | 'nan';
  out: string;
  config: SSLConfig;
  plan: Plan;
  iteration: number;
  backend: BackendName;
  knn: KnnPoint[];
  knnRawPixels: { top1: number; top5: number } | null;
  /** Distillation: k-NN of the frozen teacher. */
  teacherKnn: { top1: number; top5: number } | null;
  /** Images per second over the training steps of this process (data loading included). */
  imagesPerSecond: number;
  /** Seconds per step spent building batches vs running the model. */
  loaderSeconds: number;
  modelSeconds: number;
  trainSeconds: number;
  skippedFiles: number;
  /** Names of unreadable files (known when batches are built in this thread; workers print them as warnings). */
  skippedPaths: string[];
  datasetSize: number;
  message?: string;
  /** The networks after training (the caller disposes them with disposeRunNetworks). */
  nets: RunNetworks;
  /** summary.json's content (also written to the run folder). */
  summary: Record<string, unknown>;
  /** The attention-object score of the result backbone before training (digit-like data only). */
  attentionInitial: ObjectAttentionScore | null;
  /** The final evaluation on the full labelled splits (null when not configured, skipped, or the run did not finish). */
  evaluation: RunEvaluation | null;
}

/** The official multi-crop pipeline of the recipe at the run's sizes; `color_augment: false` turns off the
 * colour/blur/solarize ops and flips (grayscale digits are not flip-invariant). */
export function augmentation(cfg: SSLConfig): MultiCropConfig {
  const c = cfg.crops;
  const sizes = {
    globalCropsSize: c.global_crops_size, globalCropsScale: c.global_crops_scale,
    localCropsNumber: c.local_crops_number, localCropsSize: c.local_crops_size, localCropsScale: c.local_crops_scale,
  };
  const r = cfg.run;
  const off = r.color_augment ? {} : { jitterP: 0, grayscaleP: 0, blurP: [0, 0, 0] as [number, number, number], solarizeP: 0, flipP: 0 };
  // The run's overrides of the official values (each null = official); with color_augment off only flip_p applies.
  const set = {
    ...(r.flip_p !== null ? { flipP: r.flip_p } : {}),
    ...(r.color_augment && r.solarize_p !== null ? { solarizeP: r.solarize_p } : {}),
    ...(r.color_augment && r.blur_p !== null ? { blurP: r.blur_p } : {}),
    ...(r.blur_sigma !== null ? { blurSigma: r.blur_sigma } : {}),
  };
  if (cfg.recipe === 'dino') return dinoV1Augmentation({ ...sizes, ...off, ...set });
  return new DataAugmentationDINO(dinoV2Augmentation({ ...sizes, ...off, ...set, blurBugCompat: r.color_augment && r.blur_bug_compat })).config;
}

/**
 * The run's config: from `source` for a new run (with a preset that fits itself to the data, the choices for the
 * training images come first among the layers, so the user's flags override them), from config.json on --resume.
 */
async function runConfig(source: ConfigSource, opts: RunOptions, log: (line: string) => void): Promise<SSLConfig> {
  if (!opts.resume) {
    const first = resolveConfig(source);
    if (!source.preset || !PRESETS[source.preset]?.fitToData) return first;
    const fit = await folderRecipeFor(first.run.data, first.run.minutes, log);
    return resolveConfig({ ...source, layers: [fit.layer, ...(source.layers ?? [])] });
  }
  const saved = readRunFolderConfig(opts.out) as ConfigLayer;
  return resolveConfig({ layers: [saved, ...(opts.backend ? [{ run: { backend: opts.backend } }] : [])] });
}

/** Trains a run (new, or continued with opts.resume) and finishes its folder; one process per folder (run_lock.ts). */
export async function trainRun(source: ConfigSource, opts: RunOptions): Promise<RunResult> {
  const release = acquireRunLock(opts.out, opts.log ?? stderrLog, !opts.resume);
  try {
    return await trainLockedRun(source, opts);
  } finally {
    release();
  }
}

async function trainLockedRun(source: ConfigSource, opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? stderrLog;
  const out = opts.out;
  const ckPath = join(out, CHECKPOINT_FILE);
  const resumed = opts.resume ? loadResumeCheckpoint(ckPath, log) : null;
  const resolved = await runConfig(source, opts, log);
  const backend = await initBackend(resolved.run.backend as BackendName | 'auto');
  // Each data-parallel replica gets its share of the cores (this thread's kernels included).
  const threadsPerReplica = Math.max(1, Math.floor(availableParallelism() / resolved.run.data_parallel));
  if (resolved.run.data_parallel > 1) setBackendThreads(threadsPerReplica);
  const { cfg, nets } = await buildRunNetworks(resolved, log);
  if (!resumed) createRunFolder(out, cfg);
  const skipped: string[] = [];
  const dataset = await parseDatasetSpec(cfg.run.data, { onSkip: (p, why) => { skipped.push(p); log(`warning: skipping unreadable image ${p}: ${why}`); } });
  const B = cfg.train.batch_size_per_gpu;
  const replicas = cfg.run.data_parallel;
  const Bt = B * replicas; // images per iteration, all replicas
  if (dataset.length < Bt) throw new Error(`--data ${cfg.run.data} has ${dataset.length} images, fewer than the batch of ${Bt} (--batch_size_per_gpu ${B} × --data_parallel ${replicas})`);
  // Batch (epoch, it) depends only on (seed, epoch, it): resuming mid-epoch sees the same batches and augmentations.
  const loader = new MultiCropLoader(dataset, { batchSize: Bt, augmentation: augmentation(cfg), seed: cfg.train.seed, workers: cfg.run.num_workers });
  const itersPerDataEpoch = loader.iterationsPerEpoch;
  const { local_crops_number: nLocal, global_crops_size: G, local_crops_size: Lc } = cfg.crops;
  const Gs = nets.studentGlobalSize;
  const distilling = nets.ema !== undefined;
  log(`dinots train (${cfg.recipe}${distilling ? ', distillation' : ''}): ${nets.describe}; ${(parameterCount(nets.student) / 1e6).toFixed(2)}M student params (heads included); data ${dataset.name} (${dataset.length} images), batch ${replicas > 1 ? `${Bt} (${replicas} data-parallel replicas × ${B}, ${threadsPerReplica} thread${threadsPerReplica > 1 ? 's' : ''} each)` : B}, 2 global ${G}px + ${nLocal} local ${Lc}px; centering ${cfg.train.centering}; backend ${backendLabel(backend)}; run folder ${out}`);

  const policies = trainerPolicies(cfg);
  const builder = batchBuilder(cfg, nets.student, Gs, distilling, B);
  // Replicas 1..n-1 in worker threads (data_parallel.ts); this thread is replica 0.
  const dp = replicas > 1 ? await DataParallel.start(cfg, replicas, threadsPerReplica, backend) : null;
  const trainStep = (tr: SSLTrainer, crops: Float32Array[], it: number) => dataParallelStep(tr, dp, builder, crops, it, distilling);

  let plan: Plan;
  let progress: TrainProgress;
  if (resumed) {
    progress = resumed.progress;
    plan = progress.plan as Plan;
    if (plan.iters_per_data_epoch !== itersPerDataEpoch) {
      throw new Error(`--resume: the dataset now gives ${itersPerDataEpoch} iterations per epoch, the run was planned with ${plan.iters_per_data_epoch} (did --data change?)`);
    }
  } else {
    plan = cfg.run.minutes !== null ? await calibrate() : planRun(cfg, itersPerDataEpoch, null);
    progress = freshProgress(plan, itersPerDataEpoch);
  }
  const trainer = new SSLTrainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules: buildSchedules(cfg, plan), policies });
  const result = trainer.resultNetwork;
  if (resumed) {
    loadNetworkState(nets.student, resumed.student, `${ckPath} student`);
    loadNetworkState(result, resumed.teacher, `${ckPath} ${distilling ? 'student EMA' : 'teacher'}`);
    trainer.optimizer.loadStateDict(resumed.optimizer);
    trainer.loadLossState(resumed.center);
    if (progress.rng.drop_path) nets.student.backbone.dropPathRng.setState(progress.rng.drop_path);
    keepJsonLines(out, 'metrics.jsonl', (l) => (l.it as number) < progress.iteration);
    keepJsonLines(out, 'knn.jsonl', (l) => (l.iteration as number) <= progress.iteration);
    log(`resumed at iteration ${progress.iteration} / ${plan.total_iterations} (epoch ${progress.epoch})`);
  } else {
    trainer.syncEmaFromStudent();
    if (nets.initialLossState) trainer.loadLossState(nets.initialLossState);
  }

  // k-NN of the result backbone (the teacher, or the student's EMA when distilling): bank and queries prepared once.
  const total = plan.total_iterations;
  const knn = new KnnMonitor(cfg.run, cfg.train.seed, Gs, out, total, progress, log);
  await knn.prepare(opts.skipKnn ?? false);
  const evaluateKnn = (iteration: number) => knn.evaluate(iteration, result.backbone, distilling ? 'student EMA' : 'teacher');
  if (progress.iteration === 0) evaluateKnn(0);
  // Does the attention find the object before training? (digit-like data; kept in the progress across resumes)
  if (progress.iteration === 0 && !opts.skipKnn && cfg.run.final_eval) {
    const probe = await attentionProbe(cfg, Gs);
    if (probe) {
      const s = attentionScore(result.backbone, probe);
      progress.attention_initial = s;
      log(`attention at init: Jaccard of the 60%-mass mask with the digit ${s.meanHeads.toFixed(3)} (mean of heads), ${s.bestHeadJaccard.toFixed(3)} (best head)`);
    }
  }
  // Distillation: the frozen teacher's own k-NN, once, as the reference the student approaches.
  let teacherKnn = (progress.teacher_knn as RunResult['teacherKnn'] | undefined) ?? null;
  if (distilling && knn.train && knn.test && !teacherKnn) {
    const tTf = { cropSize: G, resizeSize: Math.round((G * 256) / 224) };
    const tb = G === Gs ? knn.train : await prepareKnnSplit(knn.train.dataset, cfg.run.knn_train_size, cfg.train.seed, tTf);
    const tq = G === Gs ? knn.test : await prepareKnnSplit(knn.test.dataset, cfg.run.knn_test_size, cfg.train.seed + 1, tTf);
    teacherKnn = knnScore(features(nets.teacher.backbone, tb, G), tb.labels, features(nets.teacher.backbone, tq, G), tq.labels, cfg.run.knn_k, cfg.run.knn_temperature);
    log(`k-NN of the frozen teacher: top-1 ${teacherKnn.top1.toFixed(2)}%, top-5 ${teacherKnn.top5.toFixed(2)}%`);
  }

  const save = () => {
    progress.rng = { drop_path: nets.student.backbone.dropPathRng.getState() };
    knn.saveInto(progress);
    progress.teacher_knn = teacherKnn;
    saveTrainCheckpoint(ckPath, { student: networkState(nets.student), teacher: networkState(result), optimizer: trainer.optimizer.stateDict(), center: trainer.lossState(), progress });
  };

  const K = cfg.dino.head_n_prototypes;
  const bar = opts.progress === false ? null : new TrainProgressBar(total, progress.iteration);
  let loaderS = 0;
  let modelS = 0;
  let stepsHere = 0;
  let warnedCollapse = false;
  const batches = batchesFrom(loader, progress.iteration);
  const recent: number[] = []; // the latest step times, for re-planning
  /** One iteration: batch and masks, step, metrics line, collapse warning, progress bar; returns its seconds. */
  const step = async (it: number): Promise<number> => {
    const epoch = Math.floor(it / plan.epoch_length);
    const t0 = performance.now();
    const built = (await batches.next()).value as MultiCropBatch;
    const t1 = performance.now();
    const r = await trainStep(trainer, built.crops, it);
    await new Promise((res) => setImmediate(res)); // lets the event loop run (worker replies, SIGINT)
    const t2 = performance.now();
    loaderS += (t1 - t0) / 1000;
    modelS += (t2 - t1) / 1000;
    stepsHere++;
    const dt = (t2 - t0) / 1000;
    recent.push(dt);
    if (recent.length > 50) recent.shift();
    appendJsonLine(out, 'metrics.jsonl', { it, epoch, ...r, step_s: dt, loader_s: (t1 - t0) / 1000, model_s: (t2 - t1) / 1000, images_per_s: Bt / dt, time: new Date().toISOString() });
    // Uniform collapse: the teacher's targets carry no information, and every loss term sits at its uniform value.
    if (!warnedCollapse && it > Math.min(50, total / 2) && atLogK(r.teacher_entropy, K)) {
      warnedCollapse = true;
      log(
        `\nwarning: the teacher distribution is uniform (entropy ${r.teacher_entropy.toFixed(3)}, ln K = ${Math.log(K).toFixed(3)}): training has collapsed. ` +
          'For small models or images, set dino.head_use_bn=true and ibot.head_use_bn=true (--use_bn_in_head true; the mnist presets do), ' +
          'lower teacher.teacher_temp and teacher.warmup_teacher_temp (--teacher_temp, e.g. 0.04) or raise teacher.momentum_teacher (--momentum_teacher).',
      );
    }
    const ls = loader.stats();
    const loaderImgs = ls.workerMsPerImage > 0 ? (1000 / ls.workerMsPerImage) * Math.max(1, cfg.run.num_workers) : Infinity;
    bar?.update(it + 1, { epoch, loss: r.loss, lr: r.lr, imgs: (Bt * stepsHere) / (loaderS + modelS), loaderImgs, modelImgs: (Bt * stepsHere) / modelS, entropy: r.teacher_entropy });
    return dt;
  };
  const startIteration = progress.iteration;
  const loop = {
    progress, total, itersPerEpoch: itersPerDataEpoch, settings: cfg.run, plannedBy: plan.planned_by, opts, log, knn, step, evaluateKnn, save,
    exportResult: () => exportBackbone(out, distilling ? 'distilled_backbone' : 'teacher_backbone', result.backbone),
    resumeHint: `the same command with --resume --out ${out}`,
    close: async () => {
      bar?.stop();
      await loader.close();
      await dp?.close();
    },
    /** Time-planned runs: fit the rest of the plan to the budget at the latest step time. */
    replan: () => {
      if (recent.length < 10 || !isReplanPoint(progress.iteration, loop.total)) return;
      const next = replanByTime(cfg, plan, progress.iteration, progress.train_seconds, median(recent));
      if (!next) return;
      log(`\nre-planned: ${next.total_iterations} iterations instead of ${plan.total_iterations} (steps now take ${(next.measured_step_s! * 1000).toFixed(1)} ms)`);
      plan = next;
      progress.plan = plan;
      progress.total_iterations = plan.total_iterations;
      loop.total = plan.total_iterations;
      trainer.setSchedules(buildSchedules(cfg, plan));
      knn.setTotal(plan.total_iterations);
      bar?.setTotal(plan.total_iterations);
    },
  };
  const { status, message } = await runSteps(loop);
  trainer.dispose();
  const evaluation = status === 'done' && !opts.skipKnn
    ? await finalEvaluation(cfg, [{ name: distilling ? 'student EMA' : 'teacher', model: result.backbone }, { name: 'student', model: nets.student.backbone }], Gs, log)
    : null;
  const run: Omit<RunResult, 'summary'> = {
    attentionInitial: (progress.attention_initial as ObjectAttentionScore | undefined) ?? null, evaluation,
    status, out, config: cfg, plan, iteration: progress.iteration, backend, knn: knn.history, knnRawPixels: knn.rawPixels, teacherKnn,
    imagesPerSecond: progress.iteration > startIteration && stepsHere ? (Bt * stepsHere) / (loaderS + modelS) : 0,
    loaderSeconds: stepsHere ? loaderS / stepsHere : 0, modelSeconds: stepsHere ? modelS / stepsHere : 0, trainSeconds: progress.train_seconds,
    skippedFiles: Math.max(skipped.length, loader.stats().skipped), skippedPaths: skipped, datasetSize: dataset.length, message, nets,
  };
  return { ...run, summary: await writeRunOutputs(run, log) };

  /** Times a few steps with lr 0 and momentum 1 through a throw-away trainer (parameters unchanged), then plans. */
  async function calibrate(): Promise<Plan> {
    const probe = new SSLTrainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules: frozenSchedules(cfg.teacher.teacher_temp), policies });
    const rngState = nets.student.backbone.dropPathRng.getState();
    const times: number[] = [];
    const probeBatches = batchesFrom(loader, 0);
    for (let i = 0; i < CALIBRATION_STEPS; i++) {
      const t0 = performance.now();
      await trainStep(probe, ((await probeBatches.next()).value as MultiCropBatch).crops, i);
      times.push((performance.now() - t0) / 1000);
    }
    await probeBatches.return(undefined);
    probe.dispose();
    nets.student.backbone.dropPathRng.setState(rngState);
    // The k-NN evaluations are outside the budget.
    const stepS = plannedStepSeconds(times);
    const p = planRun(cfg, itersPerDataEpoch, stepS);
    log(`planned ${p.total_iterations} iterations (${(p.total_iterations / itersPerDataEpoch).toFixed(2)} data epochs of ${itersPerDataEpoch}; ${p.epochs} schedule epochs of ${p.epoch_length}) for ${cfg.run.minutes} min at ${stepS.toFixed(3)} s/step (${(Bt / stepS).toFixed(1)} images/s)`);
    return p;
  }
}

export type { KnnPoint, RunOptions, RunNetworks };
export { disposeRunNetworks };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
