// A DINOv2 training (or distillation) run in a folder, with the same layout as the DINO v1 run (run.ts) and the
// machinery both share (run_common.ts):
//   config.json              the resolved official-layout config (+ `recipe`, and `distill` for distillation)
//   checkpoint.safetensors   sections student / teacher / optimizer / dino_loss (both centers) + progress metadata,
//                            written atomically (run_checkpoint.ts); for distillation the `teacher` section holds the
//                            student's EMA (the frozen teacher is re-read from distill.teacher on resume)
//   metrics.jsonl, knn.jsonl, and at the end teacher_backbone.{pth,safetensors} (v2) or
//   distilled_backbone.{pth,safetensors} (distillation: the student's EMA backbone)
// Batches are pure functions of (seed, data epoch, indices) and the masks of (seed, iteration), and the drop-path RNG
// state is saved, so --resume continues with the identical loss sequence.
import { join } from 'node:path';
import { tf, type Tensor } from '../backend/tf.js';
import { backendLabel, initBackend, type BackendName } from '../backend/select.js';
import type { StateDict } from '../checkpoint/types.js';
import { MultiCropLoader, type MultiCropBatch } from '../data/loader.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { DataAugmentationDINO, dinoV2Augmentation } from '../data/multicrop.js';
import { collateMasks, deriveMaskTensors, type CollatedMasks } from '../ssl/collate.js';
import { MaskingGenerator } from '../ssl/masking.js';
import { buildSchedulers, CosineScheduler, type Schedulers } from '../ssl/schedules.js';
import { concatArrays } from '../util/arrays.js';
import { Rng } from '../util/rng.js';
import { resolveV2Config, scheduleConfig, v2BackboneConfig, type Dinov2Config } from './dinov2_config.js';
import { buildV2Networks, disposeV2Network, loadV2State, v2State, type V2Network } from './dinov2_networks.js';
import { Dinov2Trainer, type V2Batch, type V2StepResult } from './dinov2_trainer.js';
import { features, knnScore, prepareKnnSplit } from './knn_monitor.js';
import { atLogK } from './monitors.js';
import { TrainProgressBar } from './progress.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint, saveTrainCheckpoint, type TrainProgress } from './run_checkpoint.js';
import {
  KnnMonitor, appendJsonLine, batchesFrom, createRunFolder, exportBackbone, freshProgress, readRunConfig,
  runSteps, stderrLog, CALIBRATION_STEPS, plannedStepSeconds, type KnnPoint, type RunOptions,
} from './run_common.js';
import type { YamlMap } from './yaml_config.js';

export type V2RunOptions = RunOptions;

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
  const log = opts.log ?? stderrLog;
  const out = opts.out;
  const ckPath = join(out, CHECKPOINT_FILE);
  const resumed = opts.resume ? loadTrainCheckpoint(ckPath) : null;
  if (!opts.resume) createRunFolder(out, { ...extra, ...cfg });
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
  log(`dinots ${String(extra.recipe)}: ${nets.describe}; ${(nParams(nets.student) / 1e6).toFixed(2)}M student params (heads included); data ${dataset.name} (${dataset.length} images), batch ${B}, 2 global ${G}px + ${nLocal} local ${Lc}px; centering ${cfg.train.centering}; backend ${backendLabel(backend)}; run folder ${out}`);

  const toBatch = (crops: Float32Array[], iteration: number): V2Batch => {
    const global = tf.tensor(concatArrays(Float32Array, crops.slice(0, 2)), [2 * B, 3, G, G]);
    const local = nLocal > 0 ? tf.tensor(concatArrays(Float32Array, crops.slice(2)), [nLocal * B, 3, Lc, Lc]) : null;
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
    progress = freshProgress(plan, itersPerDataEpoch);
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
  const total = plan.total_iterations;
  const knn = new KnnMonitor(cfg.run, cfg.train.seed, Gs, out, total, progress, log);
  await knn.prepare(opts.skipKnn ?? false);
  const evaluateKnn = (iteration: number) => knn.evaluate(iteration, result.backbone, nets.ema ? 'student EMA' : 'teacher');
  if (progress.iteration === 0) evaluateKnn(0);
  const { train: knnTrain, test: knnTest } = knn;
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
    knn.saveInto(progress);
    progress.teacher_knn = teacherKnn;
    saveTrainCheckpoint(ckPath, { student: v2State(nets.student), teacher: v2State(result), optimizer: trainer.optimizer.stateDict(), center: trainer.lossState(), progress });
  };

  const bar = opts.progress === false ? null : new TrainProgressBar(total, progress.iteration);
  let busyS = 0;
  let stepsHere = 0;
  let warned = false;
  const batches = batchesFrom(loader, progress.iteration);
  /** One iteration: batch and masks, step, metrics line, collapse warning, progress bar; returns its seconds. */
  const step = async (it: number): Promise<number> => {
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
    appendJsonLine(out, 'metrics.jsonl', { it, ...r, step_s: dt, images_per_s: B / dt, time: new Date().toISOString() });
    // Uniform collapse: the teacher's targets (centred or Sinkhorn-Knopp) carry no information, and every loss term
    // sits at its uniform value.
    if (!warned && it > Math.min(50, total / 2) && atLogK(r.teacher_entropy, cfg.dino.head_n_prototypes)) {
      warned = true;
      log(
        `\nwarning: the teacher distribution is uniform (entropy ${r.teacher_entropy.toFixed(3)}, ln K = ${Math.log(cfg.dino.head_n_prototypes).toFixed(3)}): ` +
          'training has collapsed. For small models or images, set dino.head_use_bn=true and ibot.head_use_bn=true (the mnist presets do) ' +
          'and lower teacher.teacher_temp and teacher.warmup_teacher_temp (e.g. 0.04).',
      );
    }
    bar?.update(it + 1, { epoch: Math.floor(it / plan.official_epoch_length), loss: r.loss, lr: r.lr, imgs: (B * stepsHere) / busyS, loaderImgs: NaN, modelImgs: NaN, entropy: r.teacher_entropy });
    return dt;
  };
  const { status, message } = await runSteps({
    progress, total, itersPerEpoch: itersPerDataEpoch, settings: cfg.run, plannedBy: plan.planned_by, opts, log, knn, step, evaluateKnn, save,
    exportResult: () => exportBackbone(out, nets.ema ? 'distilled_backbone' : 'teacher_backbone', result.backbone),
    resumeHint: `the same command with --resume --out ${out}`,
    close: async () => {
      bar?.stop();
      await loader.close();
    },
  });
  trainer.dispose();
  return {
    status, out, config: cfg, iteration: progress.iteration, totalIterations: total, officialEpochLength: plan.official_epoch_length, backend,
    knn: knn.history, knnRawPixels: knn.rawPixels, teacherKnn, imagesPerSecond: stepsHere ? (B * stepsHere) / busyS : 0, trainSeconds: progress.train_seconds, message, nets,
  };

  /** A few steps with lr 0 and momentum 1 through a throw-away trainer (parameters unchanged), timed. */
  async function calibrate(): Promise<V2Plan> {
    const n = CALIBRATION_STEPS;
    const zero = new CosineScheduler(0, 0, n);
    const one = new CosineScheduler(1, 1, n);
    const probeSchedules: Schedulers = { lr: zero, wd: zero, momentum: one, teacherTemp: new CosineScheduler(cfg.teacher.teacher_temp, cfg.teacher.teacher_temp, n), lastLayerLr: zero };
    const probe = new Dinov2Trainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules: probeSchedules, settings });
    const rngState = nets.student.backbone.dropPathRng.getState();
    const times: number[] = [];
    const probeBatches = batchesFrom(loader, 0);
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
    const stepS = plannedStepSeconds(times);
    const p = planV2ByTime(cfg, stepS, itersPerDataEpoch);
    log(`planned ${p.total_iterations} iterations (${cfg.optim.epochs} official-style epochs of ${p.official_epoch_length}) for ${cfg.run.minutes} min at ${stepS.toFixed(3)} s/step`);
    return p;
  }
}

export function disposeRunNetworks(n: RunNetworks): void {
  disposeV2Network(n.student);
  disposeV2Network(n.teacher);
  if (n.ema) disposeV2Network(n.ema);
}

export type { Tensor };
