// The settings of a training run, for every recipe: one nested schema in the layout and with the key names of the
// official DINOv2 ssl_default_config.yaml (sections dino / ibot / train / student / teacher / optim / crops), plus
//   recipe      the model family and augmentation pipeline: 'dino' (v1 ViT, main_dino.py crops) or 'dinov2'
//   the policy keys where the official recipes differ (train.schedule_epoch, teacher.temp_schedule_by,
//               optim.clip_grad_by, optim.freeze_last_layer_by, optim.scaling_rule, optim.param_groups)
//   run         the dinots additions (data spec, time budget, k-NN monitor, checkpoint period, backend)
//   distill     a frozen teacher to distill from (null: self-distillation with an EMA teacher)
// The values live in presets.ts; layers (YAML files, CLI flags, --set) merge over them in config_layers.ts, where
// main_dino.py's flat argument names are aliases of these keys. validateConfig checks the result once.
import { archSizes, dinoConfig, dinov2Config, namedConfig, OFFICIAL_ARCHS, type ViTConfig } from '../models/config.js';
import { posEmbedInterpolationOf } from '../models/official_config.js';
import type { ScheduleConfig } from '../ssl/schedules.js';

export type RecipeName = 'dino' | 'dinov2';

export interface HeadSection {
  head_n_prototypes: number;
  head_bottleneck_dim: number;
  head_nlayers: number;
  head_hidden_dim: number;
  /**
   * BatchNorm after each hidden Linear (DINO v1's use_bn_in_head; the official DINOv2 head has none). Small models on
   * small images need it: their CLS tokens start nearly equal and the centred teacher is uniform within a few dozen steps.
   */
  head_use_bn: boolean;
  /** DINO v1's norm_last_layer: weight_g of the last layer fixed at 1 (DINOv2 trains it: false). */
  head_norm_last_layer: boolean;
}

export interface RunSettings {
  /** Training images (a dataset spec, see data/datasets.ts). */
  data: string;
  /** Wall-clock budget in minutes for the training steps; null = train the configured epochs (or `steps`). */
  minutes: number | null;
  /** A fixed number of steps, with the schedules of a time-planned run (fractions of the plan): the same run on any
   * machine. null = by minutes or epochs. */
  steps: number | null;
  /** Colour jitter / grayscale / blur / solarize of the official pipeline, and flips (off for grayscale digits). */
  color_augment: boolean;
  /** Reproduce the official DINOv2 inverted blur probabilities (reference §2.12). */
  blur_bug_compat: boolean;
  /**
   * Overrides of the official pipeline's values (null = the recipe's official value), for data the official
   * augmentations do not fit: flips and solarization change what a digit or a letter is; blur probabilities per crop
   * (first global, second global, local) and blur sigma range in pixels (ImageNet's 0.1-2 px is for 224 px crops).
   */
  flip_p: number | null;
  solarize_p: number | null;
  blur_p: [number, number, number] | null;
  blur_sigma: [number, number] | null;
  /**
   * At the end, evaluate on the full knn_train / knn_test splits: k-NN of teacher and student on CLS and on
   * CLS + mean-pooled patches, raw pixels the same way, a linear probe, and the attention-object Jaccard (digits).
   */
  final_eval: boolean;
  knn_train: string | null;
  knn_test: string | null;
  knn_train_size: number;
  knn_test_size: number;
  knn_k: number;
  knn_temperature: number;
  /** k-NN evaluations during training (besides before and after); 0 = none. */
  knn_evals: number;
  checkpoint_minutes: number;
  /** Loader worker threads (0 = build batches in the training thread). */
  num_workers: number;
  /**
   * Data-parallel replicas, each on its share of the cores with its own batch of batch_size_per_gpu images (as GPUs
   * are in the official code); 0 = one per core, resolved when the config is (config.json records the number).
   */
  data_parallel: number;
  backend: string;
}

export interface SSLConfig {
  recipe: RecipeName;
  /** Loss weights are the list of loss terms: a weight of 0 leaves a term out. */
  dino: HeadSection & { loss_weight: number; koleo_loss_weight: number };
  ibot: HeadSection & { loss_weight: number; mask_sample_probability: number; mask_ratio_min_max: [number, number]; separate_head: boolean };
  train: {
    batch_size_per_gpu: number;
    seed: number;
    OFFICIAL_EPOCH_LENGTH: number;
    centering: 'centering' | 'sinkhorn_knopp';
    /** What an epoch of the schedules is: a pass over the data (v1) or OFFICIAL_EPOCH_LENGTH iterations (v2). */
    schedule_epoch: 'data' | 'official';
  };
  student: {
    arch: string;
    patch_size: number;
    /** Overrides of the arch's width / depth / heads (null = the arch's own). */
    embed_dim: number | null;
    depth: number | null;
    num_heads: number | null;
    drop_path_rate: number;
    layerscale: number;
    drop_path_uniform: boolean;
    ffn_layer: string;
    qkv_bias: boolean;
    proj_bias: boolean;
    ffn_bias: boolean;
    num_register_tokens: number;
    interpolate_antialias: boolean;
    interpolate_offset: number;
    /** Init of pos_embed: 'trunc_normal' (official) or 'sincos' (a 2-D sine-cosine grid; short runs on small images). */
    pos_embed_init: 'trunc_normal' | 'sincos';
  };
  /** momentum_teacher, final_momentum_teacher, warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs (official). */
  teacher: ScheduleConfig['teacher'] & {
    /** Time-planned runs: the warm-up as a fraction of the planned steps (null = warmup_teacher_temp_epochs). */
    warmup_teacher_temp_fraction: number | null;
    /** Temperature steps once per epoch (v1's DINOLoss) or moves every iteration (v2). */
    temp_schedule_by: 'epoch' | 'iteration';
  };
  optim: {
    epochs: number;
    weight_decay: number;
    weight_decay_end: number;
    base_lr: number;
    /** Set from base_lr by the scaling rule (resolveConfig). */
    lr: number;
    warmup_epochs: number;
    /** Time-planned runs: the lr warm-up as a fraction of the planned steps (null = warmup_epochs). */
    warmup_fraction: number | null;
    min_lr: number;
    /** 0 = no clipping. */
    clip_grad: number;
    /** v1 clips each parameter's gradient, v2 the global norm of each module (backbone, heads). */
    clip_grad_by: 'parameter' | 'module';
    freeze_last_layer_epochs: number;
    /** Time-planned runs: the last-layer freeze as a fraction of the planned steps (null = freeze_last_layer_epochs). */
    freeze_last_layer_fraction: number | null;
    /** v1 drops the last layer's gradients (AdamW skips it), v2 gives it an lr of 0 (its moments still move). */
    freeze_last_layer_by: 'gradients' | 'lr_schedule';
    /** lr = base_lr · batch / 256 (v1) or base_lr · sqrt(batch / 1024) (v2). */
    scaling_rule: 'linear_wrt_256' | 'sqrt_wrt_1024';
    /** v1 get_params_groups (no decay on 1-D parameters) or v2 layer-wise decay groups. */
    param_groups: 'dino' | 'dinov2';
    patch_embed_lr_mult: number;
    layerwise_decay: number;
    adamw_beta1: number;
    adamw_beta2: number;
  };
  crops: { global_crops_scale: [number, number]; local_crops_number: number; local_crops_scale: [number, number]; global_crops_size: number; local_crops_size: number };
  run: RunSettings;
  distill: {
    /** A run folder or checkpoint to distill from (frozen); null for plain training. */
    teacher: string | null;
    /** Mask the student's global crops as in pretraining (default off, as the paper's distillation). */
    masking: boolean;
  };
}

/** The student backbone config (`dropPath` false: the teacher's, the same without drop path). */
export function backboneConfig(cfg: SSLConfig, dropPath = true): ViTConfig {
  const s = cfg.student;
  const sizes = archSizes(s.arch, 'student.arch (--arch)');
  const own = { embedDim: s.embed_dim ?? sizes.embedDim, depth: s.depth ?? sizes.depth, numHeads: s.num_heads ?? sizes.numHeads };
  const dropPathRate = dropPath ? s.drop_path_rate : 0;
  if (cfg.recipe === 'dino') {
    // main_dino.py's archs at the global crop size; a named config keeps its own image size (pos-embed grid).
    const official = OFFICIAL_ARCHS[s.arch];
    const vit = official ? dinoConfig(official, s.patch_size, { imgSize: cfg.crops.global_crops_size }) : { ...namedConfig(s.arch), patchSize: s.patch_size };
    return { ...vit, ...own, dropPathRate };
  }
  if (s.ffn_layer !== 'mlp' && s.ffn_layer !== 'swiglufused' && s.ffn_layer !== 'swiglu') {
    throw new Error(`student.ffn_layer '${s.ffn_layer}' is not supported (mlp, swiglu or swiglufused)`);
  }
  return dinov2Config('small', s.num_register_tokens, {
    ...own,
    imgSize: cfg.crops.global_crops_size,
    patchSize: s.patch_size,
    initValues: s.layerscale || null,
    ffnLayer: s.ffn_layer === 'mlp' ? 'mlp' : 'swiglufused',
    qkvBias: s.qkv_bias,
    projBias: s.proj_bias,
    ffnBias: s.ffn_bias,
    posEmbedInterpolation: posEmbedInterpolationOf(s.interpolate_antialias, s.interpolate_offset),
    interpolateOffset: s.interpolate_offset,
    dropPathRate,
    dropPathUniform: s.drop_path_uniform,
  });
}

/** Checks ranges and combinations once, for every recipe; errors name the key (and its main_dino.py flag). */
export function validateConfig(cfg: SSLConfig): void {
  if (cfg.recipe !== 'dino' && cfg.recipe !== 'dinov2') throw new Error(`recipe '${String(cfg.recipe)}' is unknown: use dino or dinov2`);
  const pos = (v: number, name: string) => {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`${name} must be a positive number, got ${v}`);
  };
  pos(cfg.train.batch_size_per_gpu, 'train.batch_size_per_gpu (--batch_size_per_gpu)');
  pos(cfg.train.OFFICIAL_EPOCH_LENGTH, 'train.OFFICIAL_EPOCH_LENGTH');
  pos(cfg.student.patch_size, 'student.patch_size (--patch_size)');
  for (const h of ['dino', 'ibot'] as const) {
    pos(cfg[h].head_n_prototypes, `${h}.head_n_prototypes (--out_dim)`);
    pos(cfg[h].head_hidden_dim, `${h}.head_hidden_dim (--head_hidden_dim)`);
    pos(cfg[h].head_bottleneck_dim, `${h}.head_bottleneck_dim (--head_bottleneck_dim)`);
  }
  pos(cfg.teacher.teacher_temp, 'teacher.teacher_temp (--teacher_temp)');
  pos(cfg.crops.global_crops_size, 'crops.global_crops_size (--global_crop_size)');
  pos(cfg.crops.local_crops_size, 'crops.local_crops_size (--local_crop_size)');
  const replicas = cfg.run.data_parallel;
  if (!(Number.isInteger(replicas) && replicas >= 0)) throw new Error(`run.data_parallel (--data_parallel) must be a whole number >= 0 (0 = one replica per core), got ${replicas}`);
  if (cfg.run.minutes !== null && cfg.run.steps !== null) throw new Error('run.minutes (--minutes) and run.steps (--steps) both plan the run: give one');
  if (cfg.run.minutes !== null) pos(cfg.run.minutes, 'run.minutes (--minutes)');
  else if (cfg.run.steps !== null) {
    if (!Number.isInteger(cfg.run.steps) || cfg.run.steps < 1) throw new Error(`run.steps (--steps) must be a positive integer, got ${cfg.run.steps}`);
  } else pos(cfg.optim.epochs, 'optim.epochs (--epochs)');
  if (cfg.train.centering !== 'centering' && cfg.train.centering !== 'sinkhorn_knopp') {
    throw new Error(`train.centering '${cfg.train.centering}' must be centering or sinkhorn_knopp`);
  }
  const oneOf = (v: string, name: string, allowed: string[]) => {
    if (!allowed.includes(v)) throw new Error(`${name} '${v}' must be one of ${allowed.join(', ')}`);
  };
  oneOf(cfg.train.schedule_epoch, 'train.schedule_epoch', ['data', 'official']);
  oneOf(cfg.teacher.temp_schedule_by, 'teacher.temp_schedule_by', ['epoch', 'iteration']);
  oneOf(cfg.optim.clip_grad_by, 'optim.clip_grad_by', ['parameter', 'module']);
  oneOf(cfg.optim.freeze_last_layer_by, 'optim.freeze_last_layer_by', ['gradients', 'lr_schedule']);
  oneOf(cfg.optim.scaling_rule, 'optim.scaling_rule', ['linear_wrt_256', 'sqrt_wrt_1024']);
  oneOf(cfg.optim.param_groups, 'optim.param_groups', ['dino', 'dinov2']);
  oneOf(cfg.student.pos_embed_init, 'student.pos_embed_init (--pos_embed_init)', ['trunc_normal', 'sincos']);
  for (const k of ['flip_p', 'solarize_p'] as const) {
    const v = cfg.run[k];
    if (v !== null && !(v >= 0 && v <= 1)) throw new Error(`run.${k} (--${k}) must be a probability in [0, 1] or null, got ${v}`);
  }
  const bp = cfg.run.blur_p;
  if (bp !== null && !(bp.length === 3 && bp.every((v) => v >= 0 && v <= 1))) throw new Error(`run.blur_p (--blur_p) must be three probabilities (global 1, global 2, local) or null, got ${bp}`);
  const bs = cfg.run.blur_sigma;
  if (bs !== null && !(bs.length === 2 && bs[0]! > 0 && bs[0]! <= bs[1]!)) throw new Error(`run.blur_sigma (--blur_sigma) must be two numbers 0 < min <= max (pixels) or null, got ${bs}`);
  for (const k of ['warmup_fraction', 'freeze_last_layer_fraction'] as const) {
    const f = cfg.optim[k];
    if (f !== null && !(f >= 0 && f <= 1)) throw new Error(`optim.${k} must be in [0, 1] or null, got ${f}`);
  }
  const tf = cfg.teacher.warmup_teacher_temp_fraction;
  if (tf !== null && !(tf >= 0 && tf <= 1)) throw new Error(`teacher.warmup_teacher_temp_fraction must be in [0, 1] or null, got ${tf}`);
  const { global_crops_size: G, local_crops_size: Lc, local_crops_number: nl } = cfg.crops;
  const p = cfg.student.patch_size;
  // Distillation: the global crops are sized for the teacher's patch (distill.ts checks them), only local crops for the student's.
  const distill = cfg.distill.teacher !== null;
  if ((!distill && G % p) || (nl > 0 && Lc % p)) {
    throw new Error(`${distill ? '' : `crops.global_crops_size ${G} (--global_crop_size) and `}crops.local_crops_size ${Lc} (--local_crop_size) must be multiples of student.patch_size ${p} (--patch_size)`);
  }
  if (!Number.isInteger(nl) || nl < 0) throw new Error(`crops.local_crops_number (--local_crops_number) must be a non-negative integer, got ${nl}`);
  for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
    const [a, b] = cfg.crops[k];
    if (!(a! > 0 && b! <= 1 && a! <= b!)) throw new Error(`crops.${k} (--${k}) must be two numbers 0 < min <= max <= 1, got ${cfg.crops[k].join(' ')}`);
  }
  const m = cfg.teacher.momentum_teacher;
  if (!(m >= 0 && m <= 1)) throw new Error(`teacher.momentum_teacher (--momentum_teacher) must be in [0, 1], got ${m}`);
  const [mlo, mhi] = cfg.ibot.mask_ratio_min_max;
  if (!(mlo! >= 0 && mhi! <= 1 && mlo! <= mhi!)) throw new Error(`ibot.mask_ratio_min_max must be 0 <= min <= max <= 1, got ${cfg.ibot.mask_ratio_min_max}`);
  if (cfg.ibot.loss_weight > 0 && !(mhi! > 0 && cfg.ibot.mask_sample_probability > 0)) {
    throw new Error('ibot.loss_weight > 0 needs a positive ibot.mask_ratio_min_max and ibot.mask_sample_probability (official asserts)');
  }
  if (cfg.train.batch_size_per_gpu < 2 && cfg.dino.koleo_loss_weight > 0) throw new Error('KoLeo needs train.batch_size_per_gpu >= 2 (or dino.koleo_loss_weight 0)');
  const dp = cfg.student.drop_path_rate;
  if (dp < 0 || dp >= 1) throw new Error(`student.drop_path_rate (--drop_path_rate) must be in [0, 1), got ${dp}`);
  if (cfg.optim.clip_grad < 0) throw new Error(`optim.clip_grad (--clip_grad) must be >= 0 (0 = no clipping), got ${cfg.optim.clip_grad}`);
  if (!distill) backboneConfig(cfg);
}

/** optim.lr from optim.base_lr by the recipe's scaling rule, for the batch of all replicas (batch_size_per_gpu × world size). */
export function scaledLr(cfg: SSLConfig): number {
  const { base_lr: lr, scaling_rule: rule } = cfg.optim;
  const B = cfg.train.batch_size_per_gpu * Math.max(1, cfg.run.data_parallel);
  return rule === 'linear_wrt_256' ? (lr * B) / 256 : lr * Math.sqrt(B / 1024);
}
