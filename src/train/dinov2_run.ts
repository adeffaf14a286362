// A DINOv2 training (or distillation) run in a folder, with the same layout and machinery as the DINO v1 run (run.ts):
//   config.json              the resolved official-layout config (+ `recipe`, and `distill` for distillation)
//   checkpoint.safetensors   sections student / teacher / optimizer / dino_loss (both centers) + progress metadata,
//                            written atomically (run_checkpoint.ts); for distillation the `teacher` section holds the
//                            student's EMA (the frozen teacher is re-read from distill.teacher on resume)
//   metrics.jsonl, knn.jsonl, and at the end teacher_backbone.{pth,safetensors} (v2) or
//   distilled_backbone.{pth,safetensors} (distillation: the student's EMA backbone)
// Batches are pure functions of (seed, data epoch, indices) and the masks of (seed, iteration), and the drop-path RNG
// state is saved, so --resume continues with the identical loss sequence.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, type Tensor } from '../backend/tf.js';
import { initBackend, type BackendName } from '../backend/select.js';
import { saveSafetensors } from '../checkpoint/index.js';
import { savePth } from '../checkpoint/pth_write.js';
import type { StateDict } from '../checkpoint/types.js';
import { MultiCropLoader, type MultiCropBatch } from '../data/loader.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { DataAugmentationDINO, dinoV2Augmentation } from '../data/multicrop.js';
import { collateMasks, deriveMaskTensors, type CollatedMasks } from '../ssl/collate.js';
import { MaskingGenerator } from '../ssl/masking.js';
import { buildSchedulers, CosineScheduler, type Schedulers } from '../ssl/schedules.js';
import { Rng } from '../util/rng.js';
import { NonFiniteLossError } from './dino_trainer.js';
import { resolveV2Config, scheduleConfig, v2BackboneConfig, type Dinov2Config } from './dinov2_config.js';
import { buildV2Networks, disposeV2Network, loadV2State, v2State, type V2Network } from './dinov2_networks.js';
import { Dinov2Trainer, type V2Batch, type V2StepResult } from './dinov2_trainer.js';
import { features, knnScore, prepareKnnSplit, rawPixelKnn, type KnnSplit } from './knn_monitor.js';
import { lossAtLogK } from './monitors.js';
import { TrainProgressBar } from './progress.js';
import type { KnnPoint } from './run.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint, saveTrainCheckpoint, type TrainProgress } from './run_checkpoint.js';
import type { YamlMap } from './yaml_config.js';

export interface V2RunOptions {
  out: string;
  resume?: boolean;
  stopAfter?: number;
  skipKnn?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  handleSigint?: boolean;
}

/** What a run is made of besides the config: plain DINOv2, or distillation from a frozen teacher. */
export interface RunNetworks {
  student: V2Network;
  teacher: V2Network;
  ema?: V2Network;
  /** Distillation across patch sizes: the student's global-crop side (teacher grid × student patch). */
  studentGlobalSize: number;
  /** Distillation: feed the student unmasked crops and put every patch in the iBOT loss (paper §5 "no masking"). */
  maskStudentInput: boolean;
  /** Loss state (centers) to start from, e.g. a distillation teacher's trained centers. */
  initialLossState?: StateDict;
  describe: string;
}

export interface V2RunResult {
  status: 'done' | 'interrupted' | 'nan';
  out: string;
  config: Dinov2Config;
  iteration: number;
  totalIterations: number;
  officialEpochLength: number;
  backend: BackendName;
  knn: KnnPoint[];
  knnRawPixels: { top1: number; top5: number } | null;
  /** Distillation: k-NN of the frozen teacher. */
  teacherKnn: { top1: number; top5: number } | null;
  imagesPerSecond: number;
  trainSeconds: number;
  message?: string;
  nets: RunNetworks;
}

export interface V2Plan {
  total_iterations: number;
  official_epoch_length: number;
  iters_per_data_epoch: number;
  planned_by: 'epochs' | 'time';
  measured_step_s?: number;
}

/** Keeps the official proportions of a run of `optim.epochs` epochs: an "epoch" is total / epochs iterations. */
export function planV2ByTime(cfg: Dinov2Config, stepSeconds: number, itersPerDataEpoch: number): V2Plan {
  const fit = Math.max(1, Math.floor((cfg.run.minutes! * 60) / stepSeconds));
  const len = Math.max(1, Math.round(fit / cfg.optim.epochs));
  return { total_iterations: len * cfg.optim.epochs, official_epoch_length: len, iters_per_data_epoch: itersPerDataEpoch, planned_by: 'time', measured_step_s: stepSeconds };
}

export function planV2ByEpochs(cfg: Dinov2Config, itersPerDataEpoch: number): V2Plan {
  const len = cfg.train.OFFICIAL_EPOCH_LENGTH;
  return { total_iterations: len * cfg.optim.epochs, official_epoch_length: len, iters_per_data_epoch: itersPerDataEpoch, planned_by: 'epochs' };
}

/** The masks of one iteration (a function of seed and iteration only, so resume needs no RNG state). */
export function masksForIteration(cfg: Dinov2Config, gen: MaskingGenerator, nImages: number, iteration: number): CollatedMasks {
  return collateMasks(nImages, gen.numPatches, gen, new Rng([cfg.train.seed, iteration, 0x4d41]), {
    maskRatioMinMax: cfg.ibot.mask_ratio_min_max,
    maskProbability: cfg.ibot.mask_sample_probability,
  });
}

/** Every patch selected (distillation without masking): the iBOT loss becomes the mean over all patches. */
export function allPatchMasks(nImages: number, nTokens: number): CollatedMasks {
  const m = deriveMaskTensors({ data: new Uint8Array(nImages * nTokens).fill(1), shape: [nImages, nTokens] });
  return { ...m, upperbound: m.nMaskedPatches };
}

export function v2Augmentation(cfg: Dinov2Config): DataAugmentationDINO {
  const c = cfg.crops;
  const off = !cfg.run.color_augment;
  return new DataAugmentationDINO(
    dinoV2Augmentation({
      globalCropsSize: c.global_crops_size,
      globalCropsScale: c.global_crops_scale,
      localCropsNumber: c.local_crops_number,
      localCropsSize: c.local_crops_size,
      localCropsScale: c.local_crops_scale,
      blurBugCompat: cfg.run.blur_bug_compat,
      ...(off ? { jitterP: 0, grayscaleP: 0, blurP: [0, 0, 0] as [number, number, number], solarizeP: 0, flipP: 0, blurBugCompat: false } : {}),
    }),
  );
}

/** Reads a run folder's config.json (its `recipe` must match). */
export function readRunConfig(out: string, recipe: string): Record<string, unknown> {
  const p = join(out, 'config.json');
  if (!existsSync(p)) throw new Error(`--resume: ${out} has no config.json (is it a run folder?)`);
  const j = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  if (j.recipe !== recipe) throw new Error(`--resume: ${out} is a '${String(j.recipe ?? 'dino')}' run, not '${recipe}'; resume it with the command that started it`);
  return j;
}

/** Plain DINOv2: the config from layers (YAML files, CLI values) over the preset, or the run folder's on --resume. */
export async function trainDinov2Run(preset: string | null, layers: YamlMap[], opts: V2RunOptions): Promise<V2RunResult> {
  let cfg: Dinov2Config;
  if (opts.resume) {
    const { recipe: _r, ...saved } = readRunConfig(opts.out, 'dinov2');
    cfg = resolveV2Config(null, [saved as YamlMap]);
  } else cfg = resolveV2Config(preset, layers);
  return runV2(cfg, opts, { recipe: 'dinov2' }, () => {
    const n = buildV2Networks(cfg);
    const v = v2BackboneConfig(cfg);
    return {
      ...n,
      studentGlobalSize: cfg.crops.global_crops_size,
      maskStudentInput: true,
      describe: `${cfg.student.arch} (${v.embedDim}-d, depth ${v.depth}, patch ${v.patchSize}, ${v.numRegisterTokens} registers, LayerScale ${v.initValues})`,
    };
  });
}

/**
 * The shared loop. `extra` is written into config.json next to the config (recipe, distillation settings);
 * `build` makes the networks (student, teacher, optional EMA) once the backend is ready.
 */
export async function runV2(cfg: Dinov2Config, opts: V2RunOptions, extra: Record<string, unknown>, build: () => Promise<RunNetworks> | RunNetworks): Promise<V2RunResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const out = opts.out;
  const ckPath = join(out, CHECKPOINT_FILE);
  const resumed = opts.resume ? loadTrainCheckpoint(ckPath) : null;
  if (!opts.resume) {
    if (existsSync(ckPath)) throw new Error(`${out} already holds a run (${CHECKPOINT_FILE}); pass --resume to continue it or choose another --out`);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'config.json'), `${JSON.stringify({ ...extra, ...cfg }, null, 1)}\n`);
  }
  const backend = await initBackend(cfg.run.backend as BackendName | 'auto');
  const dataset = await parseDatasetSpec(cfg.run.data, { onSkip: (p, why) => log(`warning: skipping unreadable image ${p}: ${why}`) });
  const B = cfg.train.batch_size_per_gpu;
  if (dataset.length < B) throw new Error(`--data ${cfg.run.data} has ${dataset.length} images, fewer than train.batch_size_per_gpu ${B}`);
  const aug = v2Augmentation(cfg);
  // Batch (epoch, it) depends only on (seed, epoch, it): the shared loader's order (data/loader.ts), so resume is exact.
  const loader = new MultiCropLoader(dataset, { batchSize: B, augmentation: aug.config, seed: cfg.train.seed, workers: cfg.run.num_workers });
  const itersPerDataEpoch = loader.iterationsPerEpoch;
  const nLocal = cfg.crops.local_crops_number;
  const G = cfg.crops.global_crops_size;
  const Lc = cfg.crops.local_crops_size;

  const nets = await build();
  const studentPatch = nets.student.backbone.config.patchSize;
  const Gs = nets.studentGlobalSize;
  const grid = Gs / studentPatch;
  const maskGen = new MaskingGenerator({ inputSize: [grid, grid], maxNumPatches: 0.5 * grid * grid });
  const nParams = (n: V2Network) => [n.backbone, n.dino_head, n.ibot_head].reduce((s, m) => s + (m?.numParameters() ?? 0), 0);
  log(`dinots ${String(extra.recipe)}: ${nets.describe}; ${(nParams(nets.student) / 1e6).toFixed(2)}M student params (heads included); data ${dataset.name} (${dataset.length} images), batch ${B}, 2 global ${G}px + ${nLocal} local ${Lc}px; centering ${cfg.train.centering}; backend ${backend}; run folder ${out}`);

  /** Batches from global iteration `start` on, across data epochs (built and prefetched in the loader's worker). */
  async function* batchesFrom(start: number): AsyncGenerator<MultiCropBatch> {
    for (let epoch = Math.floor(start / itersPerDataEpoch); ; epoch++) {
      yield* loader.epoch(epoch, epoch === Math.floor(start / itersPerDataEpoch) ? start % itersPerDataEpoch : 0);
    }
  }
  const toBatch = (crops: Float32Array[], iteration: number): V2Batch => {
    const global = tf.tensor(concat(crops.slice(0, 2)), [2 * B, 3, G, G]);
    const local = nLocal > 0 ? tf.tensor(concat(crops.slice(2)), [nLocal * B, 3, Lc, Lc]) : null;
    // NCHW → NHWC for the resize and back; only when the student's patch grid needs another side (distillation).
    const studentGlobal = Gs !== G ? tf.tidy(() => tf.image.resizeBilinear(global.transpose([0, 2, 3, 1]) as tf.Tensor4D, [Gs, Gs], false, true).transpose([0, 3, 1, 2])) : undefined;
    const masks = nets.maskStudentInput ? masksForIteration(cfg, maskGen, 2 * B, iteration) : allPatchMasks(2 * B, grid * grid);
    return { global, studentGlobal, local, nLocal, masks, maskStudentInput: nets.maskStudentInput };
  };
  const disposeBatch = (b: V2Batch) => {
    b.global.dispose();
    b.local?.dispose();
    b.studentGlobal?.dispose();
  };
  const settings = {
    dinoLossWeight: cfg.dino.loss_weight, koleoLossWeight: cfg.dino.koleo_loss_weight, ibotLossWeight: cfg.ibot.loss_weight,
    centering: cfg.train.centering, clipGrad: cfg.optim.clip_grad, layerwiseDecay: cfg.optim.layerwise_decay,
    patchEmbedLrMult: cfg.optim.patch_embed_lr_mult, betas: [cfg.optim.adamw_beta1, cfg.optim.adamw_beta2] as [number, number],
  };

  let plan: V2Plan;
  let progress: TrainProgress;
  if (resumed) {
    progress = resumed.progress;
    plan = progress.plan as V2Plan;
    if (plan.iters_per_data_epoch !== itersPerDataEpoch) {
      throw new Error(`--resume: the dataset now gives ${itersPerDataEpoch} iterations per epoch, the run was planned with ${plan.iters_per_data_epoch} (did --data change?)`);
    }
  } else {
    plan = cfg.run.minutes !== null ? await calibrate() : planV2ByEpochs(cfg, itersPerDataEpoch);
    progress = { iteration: 0, epoch: 0, epoch_iteration: 0, train_seconds: 0, rng: {}, total_iterations: plan.total_iterations, iters_per_epoch: itersPerDataEpoch, plan };
  }
  const schedules = buildSchedulers(scheduleConfig(cfg, plan.official_epoch_length));
  const trainer = new Dinov2Trainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules, settings });
  if (resumed) {
    loadV2State(nets.student, resumed.student, `${ckPath} student`);
    loadV2State(nets.ema ?? nets.teacher, resumed.teacher, `${ckPath} ${nets.ema ? 'student EMA' : 'teacher'}`);
    trainer.optimizer.loadStateDict(resumed.optimizer);
    trainer.loadLossState(resumed.center);
    if (progress.rng.drop_path) nets.student.backbone.dropPathRng.setState(progress.rng.drop_path);
    log(`resumed at iteration ${progress.iteration} / ${plan.total_iterations}`);
  } else {
    trainer.syncEmaFromStudent();
    if (nets.initialLossState) trainer.loadLossState(nets.initialLossState);
  }
  const result = trainer.resultNetwork;

  // k-NN monitor on the result backbone (teacher, or the student's EMA when distilling).
  let knnTrain: KnnSplit | null = null;
  let knnTest: KnnSplit | null = null;
  const knnHistory: KnnPoint[] = resumed ? ((progress.knn as KnnPoint[] | undefined) ?? []) : [];
  let knnRawPixels = (progress.knn_raw_pixels as V2RunResult['knnRawPixels'] | undefined) ?? null;
  const evalTf = { cropSize: Gs, resizeSize: Math.round((Gs * 256) / 224) };
  if (!opts.skipKnn && cfg.run.knn_train && cfg.run.knn_test) {
    knnTrain = await prepareKnnSplit(await parseDatasetSpec(cfg.run.knn_train), cfg.run.knn_train_size, cfg.train.seed, evalTf);
    knnTest = await prepareKnnSplit(await parseDatasetSpec(cfg.run.knn_test), cfg.run.knn_test_size, cfg.train.seed + 1, evalTf);
    if (!knnRawPixels) knnRawPixels = rawPixelKnn(knnTrain, knnTest, cfg.run.knn_k, cfg.run.knn_temperature);
    log(`k-NN: bank ${knnTrain.labels.length} of ${cfg.run.knn_train}, queries ${knnTest.labels.length} of ${cfg.run.knn_test}; raw pixels top-1 ${knnRawPixels.top1.toFixed(2)}%`);
  }
  const evaluateKnn = (iteration: number) => {
    if (!knnTrain || !knnTest || knnHistory.some((p) => p.iteration === iteration)) return;
    const bank = features(result.backbone, knnTrain, Gs);
    const queries = features(result.backbone, knnTest, Gs);
    const sc = knnScore(bank, knnTrain.labels, queries, knnTest.labels, cfg.run.knn_k, cfg.run.knn_temperature);
    knnHistory.push({ iteration, ...sc });
    appendFileSync(join(out, 'knn.jsonl'), `${JSON.stringify({ iteration, top1: sc.top1, top5: sc.top5, k: cfg.run.knn_k, T: cfg.run.knn_temperature })}\n`);
    log(`k-NN (${nets.ema ? 'student EMA' : 'teacher'} CLS, k=${cfg.run.knn_k}) at iteration ${iteration}: top-1 ${sc.top1.toFixed(2)}%, top-5 ${sc.top5.toFixed(2)}%`);
  };
  const total = plan.total_iterations;
  const knnPoints = new Set<number>([0, total]);
  for (let i = 1; i <= cfg.run.knn_evals; i++) knnPoints.add(Math.round((i * total) / (cfg.run.knn_evals + 1)));
  if (progress.iteration === 0) evaluateKnn(0);
  // Distillation: the frozen teacher's own k-NN, once, as the reference the student approaches.
  let teacherKnn = (progress.teacher_knn as V2RunResult['teacherKnn'] | undefined) ?? null;
  if (nets.ema && knnTrain && knnTest && !teacherKnn) {
    const tTf = { cropSize: G, resizeSize: Math.round((G * 256) / 224) };
    const tb = G === Gs ? knnTrain : await prepareKnnSplit(knnTrain.dataset, cfg.run.knn_train_size, cfg.train.seed, tTf);
    const tq = G === Gs ? knnTest : await prepareKnnSplit(knnTest.dataset, cfg.run.knn_test_size, cfg.train.seed + 1, tTf);
    teacherKnn = knnScore(features(nets.teacher.backbone, tb, G), tb.labels, features(nets.teacher.backbone, tq, G), tq.labels, cfg.run.knn_k, cfg.run.knn_temperature);
    log(`k-NN of the frozen teacher: top-1 ${teacherKnn.top1.toFixed(2)}%, top-5 ${teacherKnn.top5.toFixed(2)}%`);
  }

  const save = () => {
    progress.rng = { drop_path: nets.student.backbone.dropPathRng.getState() };
    progress.knn = knnHistory;
    progress.knn_raw_pixels = knnRawPixels;
    progress.teacher_knn = teacherKnn;
    saveTrainCheckpoint(ckPath, { student: v2State(nets.student), teacher: v2State(result), optimizer: trainer.optimizer.stateDict(), center: trainer.lossState(), progress });
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
  let status: V2RunResult['status'] = 'done';
  let message: string | undefined;
  let lastSave = Date.now();
  let busyS = 0;
  let stepsHere = 0;
  let warned = false;
  try {
    const batches = batchesFrom(progress.iteration);
    while (progress.iteration < total) {
      if (stop || (opts.stopAfter !== undefined && stepsHere >= opts.stopAfter)) {
        status = 'interrupted';
        break;
      }
      if (cfg.run.minutes !== null && plan.planned_by === 'time' && progress.train_seconds >= cfg.run.minutes * 60 * 1.1) {
        message = `time budget reached at iteration ${progress.iteration} of ${total} planned (steps were slower than measured)`;
        log(message);
        break;
      }
      const it = progress.iteration;
      const t0 = performance.now();
      const built = (await batches.next()).value as MultiCropBatch;
      const batch = toBatch(built.crops, it);
      let r: V2StepResult;
      try {
        r = trainer.step(batch, it);
      } finally {
        disposeBatch(batch);
      }
      await new Promise((res) => setImmediate(res)); // lets SIGINT in
      const dt = (performance.now() - t0) / 1000;
      busyS += dt;
      stepsHere++;
      progress.iteration = it + 1;
      progress.epoch = Math.floor((it + 1) / itersPerDataEpoch);
      progress.epoch_iteration = (it + 1) % itersPerDataEpoch;
      progress.train_seconds += dt;
      appendFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify({ it, ...r, step_s: dt, images_per_s: B / dt, time: new Date().toISOString() })}\n`);
      if (!warned && cfg.train.centering === 'centering' && it > Math.min(50, total / 2) && lossAtLogK(r.dino_global_crops_loss * 2 + 0, cfg.dino.head_n_prototypes) && r.teacher_entropy > 0.99 * Math.log(cfg.dino.head_n_prototypes)) {
        warned = true;
        log(`\nwarning: the teacher distribution is uniform (entropy ${r.teacher_entropy.toFixed(3)} = ln K): training has collapsed. Lower teacher.teacher_temp or raise teacher.momentum_teacher.`);
      }
      bar?.update(progress.iteration, { epoch: Math.floor(it / plan.official_epoch_length), loss: r.loss, lr: r.lr, imgs: (B * stepsHere) / busyS, loaderImgs: NaN, modelImgs: NaN, entropy: r.teacher_entropy });
      if (knnPoints.has(progress.iteration) && progress.iteration !== total) evaluateKnn(progress.iteration);
      if (progress.epoch_iteration === 0 || Date.now() - lastSave > cfg.run.checkpoint_minutes * 60_000) {
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
  if (status === 'nan') log(`\n${message}`);
  else {
    save();
    if (status === 'done') {
      evaluateKnn(progress.iteration);
      save();
      const name = nets.ema ? 'distilled_backbone' : 'teacher_backbone';
      const sd = result.backbone.stateDict();
      savePth(join(out, `${name}.pth`), sd);
      saveSafetensors(join(out, `${name}.safetensors`), sd, {}, { ...result.backbone.config, dropPathRate: 0 });
    } else log(`\nsaved ${ckPath} at iteration ${progress.iteration}; continue with --resume --out ${out}`);
  }
  trainer.dispose();
  return {
    status, out, config: cfg, iteration: progress.iteration, totalIterations: total, officialEpochLength: plan.official_epoch_length, backend,
    knn: knnHistory, knnRawPixels, teacherKnn, imagesPerSecond: stepsHere ? (B * stepsHere) / busyS : 0, trainSeconds: progress.train_seconds, message, nets,
  };

  /** A few steps with lr 0 and momentum 1 through a throw-away trainer (parameters unchanged), timed. */
  async function calibrate(): Promise<V2Plan> {
    const n = 4;
    const zero = new CosineScheduler(0, 0, n);
    const one = new CosineScheduler(1, 1, n);
    const probeSchedules: Schedulers = { lr: zero, wd: zero, momentum: one, teacherTemp: new CosineScheduler(cfg.teacher.teacher_temp, cfg.teacher.teacher_temp, n), lastLayerLr: zero };
    const probe = new Dinov2Trainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules: probeSchedules, settings });
    const rngState = nets.student.backbone.dropPathRng.getState();
    const times: number[] = [];
    const probeBatches = batchesFrom(0);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const batch = toBatch(((await probeBatches.next()).value as MultiCropBatch).crops, i);
      probe.step(batch, i);
      disposeBatch(batch);
      times.push((performance.now() - t0) / 1000);
    }
    await probeBatches.return(undefined);
    probe.dispose();
    nets.student.backbone.dropPathRng.setState(rngState);
    const stepS = Math.min(...times.slice(1)) * 1.05;
    const p = planV2ByTime(cfg, stepS, itersPerDataEpoch);
    log(`planned ${p.total_iterations} iterations (${cfg.optim.epochs} official-style epochs of ${p.official_epoch_length}) for ${cfg.run.minutes} min at ${stepS.toFixed(3)} s/step`);
    return p;
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function disposeRunNetworks(n: RunNetworks): void {
  disposeV2Network(n.student);
  disposeV2Network(n.teacher);
  if (n.ema) disposeV2Network(n.ema);
}

export type { Tensor };
