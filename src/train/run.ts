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
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../backend/tf.js';
import { initBackend, type BackendName } from '../backend/select.js';
import { saveSafetensors } from '../checkpoint/index.js';
import { savePth } from '../checkpoint/pth_write.js';
import type { StateDict } from '../checkpoint/types.js';
import { parseDatasetSpec, type Dataset } from '../data/datasets.js';
import { MultiCropLoader, type MultiCropBatch } from '../data/loader.js';
import { dinoV1Augmentation, type MultiCropConfig } from '../data/multicrop.js';
import { DINOLoss } from '../ssl/dino_loss.js';
import { DEFAULT_CONFIG, backboneConfig, validateConfig, type TrainConfig } from './config.js';
import { DinoTrainer, NonFiniteLossError, type StepResult } from './dino_trainer.js';
import { features, knnScore, prepareKnnSplit, rawPixelKnn, type KnnSplit } from './knn_monitor.js';
import { lossAtLogK } from './monitors.js';
import { buildNetworks, disposeNetworks, type DinoNetworks } from './networks.js';
import { buildSchedules, planByEpochs, planByTime, type SchedulePlan } from './plan.js';
import { TrainProgressBar } from './progress.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint, saveTrainCheckpoint, type TrainProgress } from './run_checkpoint.js';

export interface RunOptions {
  out: string;
  resume?: boolean;
  /** Stop (as on SIGINT: save, return 'interrupted') after this many iterations of this process. For tests. */
  stopAfter?: number;
  /** Skip the k-NN evaluations (tests). */
  skipKnn?: boolean;
  /** Write progress lines / bar (default true). */
  progress?: boolean;
  log?: (line: string) => void;
  /** Handle SIGINT (default true). */
  handleSigint?: boolean;
}

export interface KnnPoint {
  iteration: number;
  top1: number;
  top5: number;
}

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
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const out = opts.out;
  const ckPath = join(out, CHECKPOINT_FILE);
  let cfg: TrainConfig;
  let resumed: ReturnType<typeof loadTrainCheckpoint> | null = null;
  if (opts.resume) {
    if (!existsSync(join(out, 'config.json'))) throw new Error(`--resume: ${out} has no config.json (is it a run folder?)`);
    // The saved settings define the run; only the backend may change between sessions.
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Partial<TrainConfig>;
    cfg = resolveConfig({ ...saved, backend: over.backend ?? saved.backend });
    resumed = loadTrainCheckpoint(ckPath);
  } else {
    cfg = resolveConfig(over);
    if (existsSync(ckPath)) throw new Error(`${out} already holds a run (${CHECKPOINT_FILE}); pass --resume to continue it or choose another --out`);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'config.json'), `${JSON.stringify(cfg, null, 1)}\n`);
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
  log(`dinots train: ${cfg.arch} (${backboneConfig(cfg).embedDim}-d, depth ${backboneConfig(cfg).depth}) + head K=${cfg.out_dim}, ${(networkParams / 1e6).toFixed(2)}M student params; data ${dataset.name} (${dataset.length} images), batch ${B}, ${ncrops} crops; backend ${backend}; run folder ${out}`);

  let progress: TrainProgress;
  let plan: SchedulePlan;
  const makeLoss = (epochs: number) =>
    new DINOLoss({ outDim: cfg.out_dim, ncrops, warmupTeacherTemp: cfg.warmup_teacher_temp, teacherTemp: cfg.teacher_temp,
      warmupTeacherTempEpochs: Math.min(cfg.warmup_teacher_temp_epochs, epochs), nepochs: epochs });

  /** Batches from global iteration `start` on, across epochs (the loader prefetches in its workers). */
  async function* batchesFrom(start: number): AsyncGenerator<MultiCropBatch> {
    for (let epoch = Math.floor(start / itersPerEpoch); ; epoch++) {
      yield* loader.epoch(epoch, epoch === Math.floor(start / itersPerEpoch) ? start % itersPerEpoch : 0);
    }
  }
  const cropShapes = [cfg.global_crop_size, cfg.global_crop_size, ...Array<number>(cfg.local_crops_number).fill(cfg.local_crop_size)];
  const toTensors = (crops: Float32Array[]) => crops.map((c, i) => tf.tensor(c, [B, 3, cropShapes[i]!, cropShapes[i]!]));

  if (resumed) {
    progress = resumed.progress;
    plan = progress.plan as SchedulePlan;
  } else if (cfg.minutes !== null) {
    plan = await calibrate();
    progress = { iteration: 0, epoch: 0, epoch_iteration: 0, train_seconds: 0, rng: {}, total_iterations: plan.total_iterations, iters_per_epoch: itersPerEpoch, plan };
  } else {
    plan = planByEpochs(cfg, itersPerEpoch);
    progress = { iteration: 0, epoch: 0, epoch_iteration: 0, train_seconds: 0, rng: {}, total_iterations: plan.total_iterations, iters_per_epoch: itersPerEpoch, plan };
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

  // k-NN: bank and queries are prepared once; the teacher backbone is evaluated at a few points.
  let knnTrain: KnnSplit | null = null;
  let knnTest: KnnSplit | null = null;
  const knnHistory: KnnPoint[] = resumed ? ((progress.knn as KnnPoint[] | undefined) ?? []) : [];
  let knnRawPixels = (progress.knn_raw_pixels as RunResult['knnRawPixels'] | undefined) ?? null;
  const evalTf = { cropSize: cfg.global_crop_size, resizeSize: Math.round((cfg.global_crop_size * 256) / 224) };
  if (!opts.skipKnn && cfg.knn_train && cfg.knn_test) {
    const t0 = Date.now();
    knnTrain = await prepareKnnSplit(await parseDatasetSpec(cfg.knn_train), cfg.knn_train_size, cfg.seed, evalTf);
    knnTest = await prepareKnnSplit(await parseDatasetSpec(cfg.knn_test), cfg.knn_test_size, cfg.seed + 1, evalTf);
    if (!knnRawPixels) knnRawPixels = rawPixelKnn(knnTrain, knnTest, cfg.knn_k, cfg.knn_temperature);
    log(`k-NN: bank ${knnTrain.labels.length} of ${cfg.knn_train}, queries ${knnTest.labels.length} of ${cfg.knn_test}; raw pixels top-1 ${knnRawPixels.top1.toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const evaluateKnn = (iteration: number) => {
    if (!knnTrain || !knnTest) return;
    if (knnHistory.some((p) => p.iteration === iteration)) return;
    const t0 = Date.now();
    const bank = features(nets.teacher.backbone, knnTrain, cfg.global_crop_size);
    const queries = features(nets.teacher.backbone, knnTest, cfg.global_crop_size);
    const s = knnScore(bank, knnTrain.labels, queries, knnTest.labels, cfg.knn_k, cfg.knn_temperature);
    knnHistory.push({ iteration, ...s });
    appendFileSync(join(out, 'knn.jsonl'), `${JSON.stringify({ iteration, top1: s.top1, top5: s.top5, k: cfg.knn_k, T: cfg.knn_temperature })}\n`);
    log(`k-NN (teacher CLS, k=${cfg.knn_k}) at iteration ${iteration}: top-1 ${s.top1.toFixed(2)}%, top-5 ${s.top5.toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  };
  const total = plan.total_iterations;
  const knnPoints = new Set<number>([0, total]);
  for (let i = 1; i <= cfg.knn_evals; i++) knnPoints.add(Math.round((i * total) / (cfg.knn_evals + 1)));
  if (progress.iteration === 0) evaluateKnn(0);

  const save = () => {
    progress.rng = { drop_path: nets.student.backbone.dropPathRng.getState() };
    progress.knn = knnHistory;
    progress.knn_raw_pixels = knnRawPixels;
    saveTrainCheckpoint(ckPath, {
      student: networkState(nets.student),
      teacher: networkState(nets.teacher),
      optimizer: trainer.optimizer.stateDict(),
      center: loss.stateDict(),
      progress,
    });
  };

  let stop = false;
  const onSigint = () => {
    if (stop) {
      log('second Ctrl-C: exiting without saving');
      process.exit(130);
    }
    stop = true;
    log('\nCtrl-C: finishing this step, saving a checkpoint, then exiting (press again to abort without saving)');
  };
  if (opts.handleSigint ?? true) process.on('SIGINT', onSigint);

  const bar = opts.progress === false ? null : new TrainProgressBar(total, progress.iteration);
  let status: RunResult['status'] = 'done';
  let message: string | undefined;
  let lastSave = Date.now();
  let loaderS = 0;
  let modelS = 0;
  let stepsHere = 0;
  let warnedCollapse = false;
  const startIteration = progress.iteration;
  try {
    const batches = batchesFrom(progress.iteration);
    while (progress.iteration < total) {
      if (stop || (opts.stopAfter !== undefined && stepsHere >= opts.stopAfter)) {
        status = 'interrupted';
        break;
      }
      if (cfg.minutes !== null && plan.planned_by === 'time' && progress.train_seconds >= cfg.minutes * 60 * 1.1) {
        message = `time budget reached at iteration ${progress.iteration} of ${total} planned (steps were slower than measured)`;
        log(message);
        break;
      }
      const it = progress.iteration;
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
      progress.iteration = it + 1;
      progress.epoch = Math.floor((it + 1) / itersPerEpoch);
      progress.epoch_iteration = (it + 1) % itersPerEpoch;
      progress.train_seconds += (t2 - t0) / 1000;
      const line = {
        it, epoch, ...r,
        step_s: (t2 - t0) / 1000, loader_s: (t1 - t0) / 1000, model_s: (t2 - t1) / 1000,
        images_per_s: B / ((t2 - t0) / 1000), time: new Date().toISOString(),
      };
      appendFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify(line)}\n`);
      if (!warnedCollapse && it > Math.min(50, total / 2) && lossAtLogK(r.loss, cfg.out_dim)) {
        warnedCollapse = true;
        log(`\nwarning: the loss sits at ln K = ${Math.log(cfg.out_dim).toFixed(3)} (teacher entropy ${r.teacher_entropy.toFixed(3)}): the teacher output is uniform, training has collapsed. Lower --teacher_temp or raise --momentum_teacher.`);
      }
      const ls = loader.stats();
      const loaderImgs = ls.workerMsPerImage > 0 ? (1000 / ls.workerMsPerImage) * Math.max(1, cfg.num_workers) : Infinity;
      bar?.update(progress.iteration, { epoch, loss: r.loss, lr: r.lr, imgs: (B * stepsHere) / (loaderS + modelS), loaderImgs, modelImgs: (B * stepsHere) / modelS, entropy: r.teacher_entropy });
      if (knnPoints.has(progress.iteration) && progress.iteration !== total) evaluateKnn(progress.iteration);
      const epochEnd = progress.epoch_iteration === 0;
      if (epochEnd || Date.now() - lastSave > cfg.checkpoint_minutes * 60_000) {
        save();
        lastSave = Date.now();
      }
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    status = 'nan';
    message = e.message;
  } finally {
    bar?.stop();
    if (opts.handleSigint ?? true) process.off('SIGINT', onSigint);
    await loader.close();
  }
  if (status === 'nan') {
    log(`\n${message}`);
  } else {
    save();
    if (status === 'done') {
      evaluateKnn(progress.iteration);
      save();
      exportTeacher(out, nets, cfg);
    } else {
      log(`\nsaved ${ckPath} at iteration ${progress.iteration}; continue with: dinots train --resume --out ${out}`);
    }
  }
  const steps = progress.iteration - startIteration;
  return {
    status, out, config: cfg, plan, iteration: progress.iteration, backend, knn: knnHistory, knnRawPixels,
    imagesPerSecond: steps > 0 ? (B * stepsHere) / (loaderS + modelS) : 0,
    loaderSeconds: stepsHere ? loaderS / stepsHere : 0, modelSeconds: stepsHere ? modelS / stepsHere : 0,
    trainSeconds: progress.train_seconds, skippedFiles: Math.max(skipped.length, loader.stats().skipped), skippedPaths: skipped, datasetSize: dataset.length, message, networks: nets,
  };

  /** Times a few steps with lr 0 and momentum 1 (parameters unchanged), then resets optimizer, center and RNG. */
  async function calibrate(): Promise<SchedulePlan> {
    const probeIters = 4;
    const probeLoss = makeLoss(1);
    const probe = new DinoTrainer({
      student: nets.student, teacher: nets.teacher, loss: probeLoss,
      schedules: { lr: new Float64Array(probeIters), wd: new Float64Array(probeIters), momentum: new Float64Array(probeIters).fill(1) },
      clipGrad: cfg.clip_grad, freezeLastLayer: cfg.freeze_last_layer,
    });
    const rngState = nets.student.backbone.dropPathRng.getState();
    const times: number[] = [];
    const probeBatches = batchesFrom(0);
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
    // The first step includes one-time costs (kernel setup, allocation): use the median of the rest, plus 10% margin
    // (steps also wait for the loader and share the machine). The k-NN evaluations are outside the budget.
    const rest = times.slice(1).sort((a, b) => a - b);
    const stepS = rest[Math.floor(rest.length / 2)]! * 1.1;
    const p = planByTime(cfg, itersPerEpoch, stepS);
    log(`planned ${p.total_iterations} iterations (${(p.total_iterations / itersPerEpoch).toFixed(2)} epochs of ${itersPerEpoch}) for ${cfg.minutes} min at ${stepS.toFixed(3)} s/step (${(B / stepS).toFixed(1)} images/s)`);
    return p;
  }
}

/** The teacher backbone under the official key names, as .pth (torch.save(state_dict)) and safetensors. */
function exportTeacher(out: string, nets: DinoNetworks, cfg: TrainConfig): void {
  const sd = nets.teacher.backbone.stateDict();
  savePth(join(out, 'teacher_backbone.pth'), sd);
  saveSafetensors(join(out, 'teacher_backbone.safetensors'), sd, {}, { ...backboneConfig(cfg), dropPathRate: 0 });
}

export { disposeNetworks };
export type { Dataset };
