// A DINO (v1) training run in a folder:
//   config.json          the resolved settings (official argument names)
//   checkpoint.safetensors  student, teacher, optimizer, center + progress (iteration, epoch, RNG, plan); atomic writes
//   metrics.jsonl        one line per iteration (loss, lr, wd, momentum, collapse monitors, throughput)
//   knn.jsonl            k-NN top-1 of the teacher backbone at the evaluation points
//   teacher_backbone.pth / .safetensors   the teacher backbone under the official key names (at the end)
//   summary.json, report.html (+ PNGs)    written by the caller (cli train) from the returned result
// Checkpoints are written every `checkpoint_minutes`, at epoch ends, at the end and on SIGINT (the running step is
// finished first). `resume` continues from checkpoint.safetensors exactly: same data order and augmentations (both are
// functions of seed, epoch and index), same drop-path stream, same optimizer state, so the loss sequence is identical.
import { join } from 'node:path';
import { tf } from '../backend/tf.js';
import { backendLabel, initBackend, type BackendName } from '../backend/select.js';
import type { StateDict } from '../checkpoint/types.js';
import { parseDatasetSpec, type Dataset } from '../data/datasets.js';
import { MultiCropLoader, type MultiCropBatch } from '../data/loader.js';
import { dinoV1Augmentation, type MultiCropConfig } from '../data/multicrop.js';
import { DINOLoss } from '../ssl/dino_loss.js';
import { DEFAULT_CONFIG, backboneConfig, validateConfig, type TrainConfig } from './config.js';
import { DinoTrainer, type StepResult } from './dino_trainer.js';
import { atLogK } from './monitors.js';
import { buildNetworks, disposeNetworks, type DinoNetworks } from './networks.js';
import { buildSchedules, planByEpochs, planByTime, type SchedulePlan } from './plan.js';
import { TrainProgressBar } from './progress.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint, saveTrainCheckpoint, type TrainProgress } from './run_checkpoint.js';
import {
  KnnMonitor, appendJsonLine, batchesFrom, createRunFolder, exportBackbone, freshProgress, readRunFolderConfig,
  runSteps, stderrLog, CALIBRATION_STEPS, plannedStepSeconds, type KnnPoint, type RunOptions,
} from './run_common.js';

export interface RunResult {
  status: 'done' | 'interrupted' | 'nan';
  out: string;
  config: TrainConfig;
  plan: SchedulePlan;
  iteration: number;
  backend: BackendName;
  knn: KnnPoint[];
  knnRawPixels: { top1: number; top5: number } | null;
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
  /** The networks after training (the caller disposes them with disposeNetworks). */
  networks: DinoNetworks;
}

/** Merges a partial config (CLI values, official names) over the defaults and validates it. */
export function resolveConfig(over: Partial<TrainConfig>): TrainConfig {
  const cfg = { ...DEFAULT_CONFIG, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) } as TrainConfig;
  validateConfig(cfg);
  return cfg;
}

/** The official v1 multi-crop pipeline at the run's sizes; `color_augment: false` turns off the colour/blur/solarize
 * ops and flips (grayscale digits are not flip-invariant). */
function augmentation(cfg: TrainConfig): MultiCropConfig {
  const off = !cfg.color_augment;
  return dinoV1Augmentation({
    globalCropsSize: cfg.global_crop_size,
    globalCropsScale: cfg.global_crops_scale,
    localCropsNumber: cfg.local_crops_number,
    localCropsSize: cfg.local_crop_size,
    localCropsScale: cfg.local_crops_scale,
    ...(off ? { jitterP: 0, grayscaleP: 0, blurP: [0, 0, 0] as [number, number, number], solarizeP: 0, flipP: 0 } : {}),
  });
}

function prefixed(prefix: string, sd: StateDict): StateDict {
  return new Map([...sd].map(([k, t]) => [`${prefix}${k}`, t]));
}

function unprefixed(prefix: string, sd: StateDict): StateDict {
  return new Map([...sd].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
}

function networkState(net: DinoNetworks['student']): StateDict {
  return new Map([...prefixed('backbone.', net.backbone.stateDict()), ...prefixed('head.', net.head.stateDict())]);
}

function loadNetworkState(net: DinoNetworks['student'], sd: StateDict): void {
  net.backbone.loadStateDict(unprefixed('backbone.', sd));
  net.head.loadStateDict(unprefixed('head.', sd));
}

export async function trainRun(over: Partial<TrainConfig>, opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? stderrLog;
  const out = opts.out;
  const ckPath = join(out, CHECKPOINT_FILE);
  let cfg: TrainConfig;
  let resumed: ReturnType<typeof loadTrainCheckpoint> | null = null;
  if (opts.resume) {
    // The saved settings define the run; only the backend may change between sessions.
    const saved = readRunFolderConfig(out) as Partial<TrainConfig>;
    cfg = resolveConfig({ ...saved, backend: over.backend ?? saved.backend });
    resumed = loadTrainCheckpoint(ckPath);
  } else {
    cfg = resolveConfig(over);
    createRunFolder(out, cfg);
  }
  const backend = await initBackend(cfg.backend as BackendName | 'auto');
  const skipped: string[] = [];
  const dataset = await parseDatasetSpec(cfg.data, { onSkip: (p, why) => { skipped.push(p); log(`warning: skipping unreadable image ${p}: ${why}`); } });
  const B = cfg.batch_size_per_gpu;
  if (dataset.length < B) throw new Error(`--data ${cfg.data} has ${dataset.length} images, fewer than --batch_size_per_gpu ${B}`);
  // Batch (epoch, it) depends only on (seed, epoch, it): resuming mid-epoch sees the same batches and augmentations.
  const loader = new MultiCropLoader(dataset, { batchSize: B, augmentation: augmentation(cfg), seed: cfg.seed, workers: cfg.num_workers });
  const itersPerEpoch = loader.iterationsPerEpoch;
  const ncrops = 2 + cfg.local_crops_number;

  const nets = buildNetworks(cfg);
  const networkParams = [nets.student.backbone, nets.student.head].reduce((s, m) => s + m.numParameters(), 0);
  log(`dinots train: ${cfg.arch} (${backboneConfig(cfg).embedDim}-d, depth ${backboneConfig(cfg).depth}) + head K=${cfg.out_dim}, ${(networkParams / 1e6).toFixed(2)}M student params; data ${dataset.name} (${dataset.length} images), batch ${B}, ${ncrops} crops; backend ${backendLabel(backend)}; run folder ${out}`);

  let progress: TrainProgress;
  let plan: SchedulePlan;
  const makeLoss = (epochs: number) =>
    new DINOLoss({ outDim: cfg.out_dim, ncrops, warmupTeacherTemp: cfg.warmup_teacher_temp, teacherTemp: cfg.teacher_temp,
      warmupTeacherTempEpochs: Math.min(cfg.warmup_teacher_temp_epochs, epochs), nepochs: epochs });

  const cropShapes = [cfg.global_crop_size, cfg.global_crop_size, ...Array<number>(cfg.local_crops_number).fill(cfg.local_crop_size)];
  const toTensors = (crops: Float32Array[]) => crops.map((c, i) => tf.tensor(c, [B, 3, cropShapes[i]!, cropShapes[i]!]));

  if (resumed) {
    progress = resumed.progress;
    plan = progress.plan as SchedulePlan;
  } else if (cfg.minutes !== null) {
    plan = await calibrate();
    progress = freshProgress(plan, itersPerEpoch);
  } else {
    plan = planByEpochs(cfg, itersPerEpoch);
    progress = freshProgress(plan, itersPerEpoch);
  }
  if (plan.iters_per_epoch !== itersPerEpoch) {
    throw new Error(`--resume: the dataset now gives ${itersPerEpoch} iterations per epoch, the run was planned with ${plan.iters_per_epoch} (did --data change?)`);
  }

  const loss = makeLoss(plan.epochs);
  const trainer = new DinoTrainer({ student: nets.student, teacher: nets.teacher, loss, schedules: buildSchedules(cfg, plan), clipGrad: cfg.clip_grad, freezeLastLayer: cfg.freeze_last_layer });
  if (resumed) {
    loadNetworkState(nets.student, resumed.student);
    loadNetworkState(nets.teacher, resumed.teacher);
    trainer.optimizer.loadStateDict(resumed.optimizer);
    loss.loadStateDict(resumed.center);
    if (progress.rng.drop_path) nets.student.backbone.dropPathRng.setState(progress.rng.drop_path);
    log(`resumed at iteration ${progress.iteration} / ${plan.total_iterations} (epoch ${progress.epoch})`);
  } else {
    trainer.syncTeacherFromStudent();
  }

  // k-NN of the teacher backbone: bank and queries are prepared once, evaluated at a few points.
  const total = plan.total_iterations;
  const knn = new KnnMonitor(cfg, cfg.seed, cfg.global_crop_size, out, total, progress, log);
  await knn.prepare(opts.skipKnn ?? false);
  const evaluateKnn = (iteration: number) => knn.evaluate(iteration, nets.teacher.backbone, 'teacher');
  if (progress.iteration === 0) evaluateKnn(0);

  const save = () => {
    progress.rng = { drop_path: nets.student.backbone.dropPathRng.getState() };
    knn.saveInto(progress);
    saveTrainCheckpoint(ckPath, {
      student: networkState(nets.student),
      teacher: networkState(nets.teacher),
      optimizer: trainer.optimizer.stateDict(),
      center: loss.stateDict(),
      progress,
    });
  };

  const bar = opts.progress === false ? null : new TrainProgressBar(total, progress.iteration);
  let loaderS = 0;
  let modelS = 0;
  let stepsHere = 0;
  let warnedCollapse = false;
  const startIteration = progress.iteration;
  const batches = batchesFrom(loader, progress.iteration);
  /** One iteration: batch, step, metrics line, collapse warning, progress bar; returns its seconds. */
  const step = async (it: number): Promise<number> => {
    const epoch = Math.floor(it / itersPerEpoch);
    const t0 = performance.now();
    const batch = (await batches.next()).value as MultiCropBatch;
    const t1 = performance.now();
    const crops = toTensors(batch.crops);
    let r: StepResult;
    try {
      r = trainer.step(crops, it, epoch);
    } finally {
      for (const c of crops) c.dispose();
    }
    // Let the event loop run (worker replies, SIGINT).
    await new Promise((res) => setImmediate(res));
    const t2 = performance.now();
    loaderS += (t1 - t0) / 1000;
    modelS += (t2 - t1) / 1000;
    stepsHere++;
    const line = {
      it, epoch, ...r,
      step_s: (t2 - t0) / 1000, loader_s: (t1 - t0) / 1000, model_s: (t2 - t1) / 1000,
      images_per_s: B / ((t2 - t0) / 1000), time: new Date().toISOString(),
    };
    appendJsonLine(out, 'metrics.jsonl', line);
    if (!warnedCollapse && it > Math.min(50, total / 2) && atLogK(r.loss, cfg.out_dim)) {
      warnedCollapse = true;
      log(`\nwarning: the loss sits at ln K = ${Math.log(cfg.out_dim).toFixed(3)} (teacher entropy ${r.teacher_entropy.toFixed(3)}): the teacher output is uniform, training has collapsed. Lower --teacher_temp or raise --momentum_teacher.`);
    }
    const ls = loader.stats();
    const loaderImgs = ls.workerMsPerImage > 0 ? (1000 / ls.workerMsPerImage) * Math.max(1, cfg.num_workers) : Infinity;
    bar?.update(it + 1, { epoch, loss: r.loss, lr: r.lr, imgs: (B * stepsHere) / (loaderS + modelS), loaderImgs, modelImgs: (B * stepsHere) / modelS, entropy: r.teacher_entropy });
    return (t2 - t0) / 1000;
  };
  const { status, message } = await runSteps({
    progress, total, itersPerEpoch, settings: cfg, plannedBy: plan.planned_by, opts, log, knn, step, evaluateKnn, save,
    exportResult: () => exportBackbone(out, 'teacher_backbone', nets.teacher.backbone),
    resumeHint: `dinots train --resume --out ${out}`,
    close: async () => {
      bar?.stop();
      await loader.close();
    },
  });
  const steps = progress.iteration - startIteration;
  return {
    status, out, config: cfg, plan, iteration: progress.iteration, backend, knn: knn.history, knnRawPixels: knn.rawPixels,
    imagesPerSecond: steps > 0 ? (B * stepsHere) / (loaderS + modelS) : 0,
    loaderSeconds: stepsHere ? loaderS / stepsHere : 0, modelSeconds: stepsHere ? modelS / stepsHere : 0,
    trainSeconds: progress.train_seconds, skippedFiles: Math.max(skipped.length, loader.stats().skipped), skippedPaths: skipped, datasetSize: dataset.length, message, networks: nets,
  };

  /** Times a few steps with lr 0 and momentum 1 (parameters unchanged), then resets optimizer, center and RNG. */
  async function calibrate(): Promise<SchedulePlan> {
    const probeIters = CALIBRATION_STEPS;
    const probeLoss = makeLoss(1);
    const probe = new DinoTrainer({
      student: nets.student, teacher: nets.teacher, loss: probeLoss,
      schedules: { lr: new Float64Array(probeIters), wd: new Float64Array(probeIters), momentum: new Float64Array(probeIters).fill(1) },
      clipGrad: cfg.clip_grad, freezeLastLayer: cfg.freeze_last_layer,
    });
    const rngState = nets.student.backbone.dropPathRng.getState();
    const times: number[] = [];
    const probeBatches = batchesFrom(loader, 0);
    for (let i = 0; i < probeIters; i++) {
      const t0 = performance.now();
      const batch = (await probeBatches.next()).value as MultiCropBatch;
      const crops = toTensors(batch.crops);
      probe.step(crops, i, 0);
      for (const c of crops) c.dispose();
      times.push((performance.now() - t0) / 1000);
    }
    await probeBatches.return(undefined);
    probe.optimizer.dispose();
    probeLoss.dispose();
    nets.student.backbone.dropPathRng.setState(rngState);
    // The k-NN evaluations are outside the budget.
    const stepS = plannedStepSeconds(times);
    const p = planByTime(cfg, itersPerEpoch, stepS);
    log(`planned ${p.total_iterations} iterations (${(p.total_iterations / itersPerEpoch).toFixed(2)} epochs of ${itersPerEpoch}) for ${cfg.minutes} min at ${stepS.toFixed(3)} s/step (${(B / stepS).toFixed(1)} images/s)`);
    return p;
  }
}

export { disposeNetworks };
export type { KnnPoint, RunOptions };
export type { Dataset };
