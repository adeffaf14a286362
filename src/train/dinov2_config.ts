// Settings of a DINOv2 training run, in the layout and with the key names of the official ssl_default_config.yaml
// (sections dino / ibot / train / student / teacher / optim / crops). DEFAULT_V2_CONFIG holds the official default
// values; an official train YAML (vitl14.yaml, vitg14.yaml...) merges over it as OmegaConf does; the `run` section holds
// the dinots additions (data spec, time budget, k-NN monitor, checkpoint period, backend).
// Sections of the official files with no meaning here (MODEL, compute_precision: we train in fp32 on one process;
// evaluation) are accepted and ignored; any other unknown key is an error naming it.
import { NAMED_CONFIGS, SIZES, dinov2Config, namedConfig, type ViTConfig } from '../models/config.js';
import { posEmbedInterpolationOf } from '../models/official_config.js';
import type { ScheduleConfig } from '../ssl/schedules.js';
import type { RunSettings } from './run_settings.js';
import { mergeConfig, type YamlMap } from './yaml_config.js';

export interface HeadSection {
  head_n_prototypes: number;
  head_bottleneck_dim: number;
  head_nlayers: number;
  head_hidden_dim: number;
  /**
   * dinots addition (the official DINOv2 head has none): BatchNorm after each hidden Linear, as DINO v1's
   * use_bn_in_head. Small models on small images need it: their CLS tokens start nearly equal, the centred teacher is
   * uniform within a few dozen steps and training stays there (see the mnist presets).
   */
  head_use_bn: boolean;
}

export interface Dinov2Config {
  dino: HeadSection & { loss_weight: number; koleo_loss_weight: number };
  ibot: HeadSection & { loss_weight: number; mask_sample_probability: number; mask_ratio_min_max: [number, number]; separate_head: boolean };
  train: { batch_size_per_gpu: number; seed: number; OFFICIAL_EPOCH_LENGTH: number; centering: 'centering' | 'sinkhorn_knopp' };
  student: {
    arch: string;
    patch_size: number;
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
  };
  teacher: { momentum_teacher: number; final_momentum_teacher: number; warmup_teacher_temp: number; teacher_temp: number; warmup_teacher_temp_epochs: number };
  optim: {
    epochs: number;
    weight_decay: number;
    weight_decay_end: number;
    base_lr: number;
    /** Set from base_lr by the scaling rule (resolveV2Config). */
    lr: number;
    warmup_epochs: number;
    min_lr: number;
    clip_grad: number;
    freeze_last_layer_epochs: number;
    scaling_rule: 'sqrt_wrt_1024';
    patch_embed_lr_mult: number;
    layerwise_decay: number;
    adamw_beta1: number;
    adamw_beta2: number;
  };
  crops: { global_crops_scale: [number, number]; local_crops_number: number; local_crops_scale: [number, number]; global_crops_size: number; local_crops_size: number };
  /** `minutes: null` = optim.epochs × OFFICIAL_EPOCH_LENGTH iterations. */
  run: RunSettings & {
    /** Reproduce the official inverted blur probabilities (reference §2.12). */
    blur_bug_compat: boolean;
  };
}

/** ssl_default_config.yaml (the sections above), plus the dinots run defaults. */
export const DEFAULT_V2_CONFIG: Dinov2Config = {
  dino: { loss_weight: 1.0, head_n_prototypes: 65536, head_bottleneck_dim: 256, head_nlayers: 3, head_hidden_dim: 2048, head_use_bn: false, koleo_loss_weight: 0.1 },
  ibot: {
    loss_weight: 1.0, mask_sample_probability: 0.5, mask_ratio_min_max: [0.1, 0.5], separate_head: false,
    head_n_prototypes: 65536, head_bottleneck_dim: 256, head_nlayers: 3, head_hidden_dim: 2048, head_use_bn: false,
  },
  train: { batch_size_per_gpu: 64, seed: 0, OFFICIAL_EPOCH_LENGTH: 1250, centering: 'centering' },
  student: {
    arch: 'vit_large', patch_size: 16, drop_path_rate: 0.3, layerscale: 1e-5, drop_path_uniform: true, ffn_layer: 'mlp',
    qkv_bias: true, proj_bias: true, ffn_bias: true, num_register_tokens: 0, interpolate_antialias: false, interpolate_offset: 0.1,
  },
  teacher: { momentum_teacher: 0.992, final_momentum_teacher: 1, warmup_teacher_temp: 0.04, teacher_temp: 0.07, warmup_teacher_temp_epochs: 30 },
  optim: {
    epochs: 100, weight_decay: 0.04, weight_decay_end: 0.4, base_lr: 0.004, lr: 0, warmup_epochs: 10, min_lr: 1e-6, clip_grad: 3.0,
    freeze_last_layer_epochs: 1, scaling_rule: 'sqrt_wrt_1024', patch_embed_lr_mult: 0.2, layerwise_decay: 0.9, adamw_beta1: 0.9, adamw_beta2: 0.999,
  },
  crops: { global_crops_scale: [0.32, 1.0], local_crops_number: 8, local_crops_scale: [0.05, 0.32], global_crops_size: 224, local_crops_size: 96 },
  run: {
    data: 'mnist:train', minutes: null, color_augment: true, blur_bug_compat: false,
    knn_train: null, knn_test: null, knn_train_size: 10000, knn_test_size: 2000, knn_k: 20, knn_temperature: 0.07, knn_evals: 4,
    checkpoint_minutes: 5, num_workers: 1, backend: 'auto',
  },
};

/**
 * Small CPU-sized presets: the official recipe with a nano ViT on 28 px digits. The schedule lengths keep the official
 * proportions (warm-up 10%, last layer frozen 1% → here 5%) of a run planned by time.
 * Changed from the official values, because with them these runs collapse: within ~50 steps the centred teacher is
 * uniform (teacher entropy = ln K, every loss term at its uniform value) and stays there, so the DINO and iBOT terms
 * teach nothing and only KoLeo moves the features. Measured in 2-minute runs (vit_mini_p4_28, batch 32):
 *  - BatchNorm in the heads (dinots' head_use_bn, as DINO v1's use_bn_in_head) and a separate iBOT head: the digits'
 *    CLS tokens start nearly equal, and without BatchNorm the centred targets are uniform from the start;
 *  - teacher temperature 0.04 throughout (0.07 with BatchNorm still drifted to uniform), smaller heads (K 1024, hidden
 *    256, bottleneck 64: sharper random prototypes), no drop path;
 *  - LayerScale init 1 (1e-5 makes every block an identity at init: k-NN at chance, 10%);
 *  - base_lr 0.008, no layer-wise decay, no patch-embedding multiplier (faster for a few hundred steps).
 */
const MNIST_TINY: YamlMap = {
  dino: { head_n_prototypes: 1024, head_bottleneck_dim: 64, head_hidden_dim: 256, head_use_bn: true },
  ibot: { head_n_prototypes: 1024, head_bottleneck_dim: 64, head_hidden_dim: 256, head_use_bn: true, separate_head: true },
  train: { batch_size_per_gpu: 64, OFFICIAL_EPOCH_LENGTH: 10 },
  student: { arch: 'vit_nano_p4_28', patch_size: 4, drop_path_rate: 0, layerscale: 1 },
  teacher: { momentum_teacher: 0.99, warmup_teacher_temp: 0.04, teacher_temp: 0.04 },
  // base_lr 8e-3 at batch 1024 → the sqrt rule gives 2e-3 at batch 64.
  optim: { epochs: 20, warmup_epochs: 2, freeze_last_layer_epochs: 1, base_lr: 0.008, layerwise_decay: 1, patch_embed_lr_mult: 1 },
  crops: { global_crops_scale: [0.4, 1], local_crops_number: 4, local_crops_scale: [0.1, 0.4], global_crops_size: 28, local_crops_size: 12 },
  run: { data: 'mnist:train', minutes: 5, color_augment: false, knn_train: 'mnist:train', knn_test: 'mnist:test', knn_train_size: 10000, knn_test_size: 2000, knn_evals: 2 },
};

export const V2_PRESETS: Record<string, YamlMap> = {
  'mnist-tiny': MNIST_TINY,
  /** A larger model for the same data (the distillation teacher of the MNIST demo); otherwise mnist-tiny. */
  'mnist-small': { ...MNIST_TINY, student: { ...(MNIST_TINY.student as YamlMap), arch: 'vit_micro_p4_28' } },
};

/** Extra small architectures of the presets (dinots-only sizes, v2 family). */
export const EXTRA_ARCHS: Record<string, { embedDim: number; depth: number; numHeads: number }> = {
  /** Test-sized. */
  vit_pico: { embedDim: 32, depth: 2, numHeads: 2 },
  /** The `dinots train` default model (DEFAULT_CONFIG: vit_nano_p4_28 narrowed to 64-d, depth 3, 2 heads). */
  vit_mini_p4_28: { embedDim: 64, depth: 3, numHeads: 2 },
  vit_nano_p4_28: { embedDim: 96, depth: 4, numHeads: 3 },
  vit_micro_p4_28: { embedDim: 192, depth: 6, numHeads: 3 },
};

const OFFICIAL_ARCHS: Record<string, keyof typeof SIZES> = { vit_small: 'small', vit_base: 'base', vit_large: 'large', vit_giant2: 'giant2', vit_tiny: 'tiny' };
const IGNORED_SECTIONS = new Set(['MODEL', 'compute_precision', 'evaluation']);
const IGNORED_KEYS: Record<string, string[]> = {
  train: ['dataset_path', 'output_dir', 'saveckp_freq', 'num_workers', 'cache_dataset'],
  student: ['pretrained_weights', 'block_chunks'],
};

/** Throws on keys the config does not know (catches typos in YAML files and --set). */
function checkKeys(over: YamlMap, base: Record<string, unknown>, where: string): void {
  for (const [k, v] of Object.entries(over)) {
    if (!where && IGNORED_SECTIONS.has(k)) continue;
    if (IGNORED_KEYS[where]?.includes(k)) continue;
    if (!(k in base)) throw new Error(`config: unknown key '${where ? `${where}.` : ''}${k}' (known: ${Object.keys(base).join(', ')})`);
    const b = base[k];
    if (typeof b === 'object' && b !== null && !Array.isArray(b) && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      checkKeys(v as YamlMap, b as Record<string, unknown>, where ? `${where}.${k}` : k);
    }
  }
}

function dropIgnored(over: YamlMap): YamlMap {
  const out: YamlMap = {};
  for (const [k, v] of Object.entries(over)) {
    if (IGNORED_SECTIONS.has(k)) continue;
    if (IGNORED_KEYS[k] && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).filter(([kk]) => !IGNORED_KEYS[k]!.includes(kk)));
    } else out[k] = v;
  }
  return out;
}

/**
 * Defaults ← preset ← each layer in order (YAML files, CLI values), then the scaling rule
 * (optim.lr = base_lr · sqrt(batch / 1024), one process) and validation.
 */
export function resolveV2Config(preset: string | null, layers: YamlMap[], opts: { distill?: boolean } = {}): Dinov2Config {
  let cfg: Dinov2Config = structuredClone(DEFAULT_V2_CONFIG);
  if (preset) {
    const p = V2_PRESETS[preset];
    if (!p) throw new Error(`--preset '${preset}' is unknown; known: ${Object.keys(V2_PRESETS).join(', ')}`);
    cfg = mergeConfig(cfg, p);
  }
  for (const layer of layers) {
    checkKeys(layer, cfg as unknown as Record<string, unknown>, '');
    cfg = mergeConfig(cfg, dropIgnored(layer));
  }
  if (cfg.optim.scaling_rule !== 'sqrt_wrt_1024') throw new Error(`optim.scaling_rule '${cfg.optim.scaling_rule}' is not supported (only sqrt_wrt_1024, as the official code)`);
  cfg.optim.lr = cfg.optim.base_lr * Math.sqrt(cfg.train.batch_size_per_gpu / 1024);
  validateV2Config(cfg, opts);
  return cfg;
}

/** The student backbone config (the teacher is the same without drop path). */
export function v2BackboneConfig(cfg: Dinov2Config, dropPath = true): ViTConfig {
  const s = cfg.student;
  const off = OFFICIAL_ARCHS[s.arch];
  const extra = EXTRA_ARCHS[s.arch];
  let sizes: { embedDim: number; depth: number; numHeads: number };
  if (off) sizes = SIZES[off];
  else if (extra) sizes = extra;
  else if (NAMED_CONFIGS[s.arch]) {
    const n = namedConfig(s.arch);
    sizes = { embedDim: n.embedDim, depth: n.depth, numHeads: n.numHeads };
  } else {
    throw new Error(`student.arch '${s.arch}' is unknown: use ${[...Object.keys(OFFICIAL_ARCHS), ...Object.keys(EXTRA_ARCHS), ...Object.keys(NAMED_CONFIGS)].join(', ')}`);
  }
  if (s.ffn_layer !== 'mlp' && s.ffn_layer !== 'swiglufused' && s.ffn_layer !== 'swiglu') {
    throw new Error(`student.ffn_layer '${s.ffn_layer}' is not supported (mlp, swiglu or swiglufused)`);
  }
  return dinov2Config('small', s.num_register_tokens, {
    ...sizes,
    imgSize: cfg.crops.global_crops_size,
    patchSize: s.patch_size,
    initValues: s.layerscale || null,
    ffnLayer: s.ffn_layer === 'mlp' ? 'mlp' : 'swiglufused',
    qkvBias: s.qkv_bias,
    projBias: s.proj_bias,
    ffnBias: s.ffn_bias,
    posEmbedInterpolation: posEmbedInterpolationOf(s.interpolate_antialias, s.interpolate_offset),
    interpolateOffset: s.interpolate_offset,
    dropPathRate: dropPath ? s.drop_path_rate : 0,
    dropPathUniform: s.drop_path_uniform,
  });
}

/** The fields buildSchedulers reads. */
export function scheduleConfig(cfg: Dinov2Config, officialEpochLength: number): ScheduleConfig {
  return { train: { OFFICIAL_EPOCH_LENGTH: officialEpochLength }, optim: cfg.optim, teacher: cfg.teacher };
}

/** `distill`: the global crops are sized for the teacher's patch (distill.ts checks them), only local crops for the student's. */
export function validateV2Config(cfg: Dinov2Config, { distill = false }: { distill?: boolean } = {}): void {
  const pos = (v: number, name: string) => {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`config ${name} must be a positive number, got ${v}`);
  };
  pos(cfg.train.batch_size_per_gpu, 'train.batch_size_per_gpu');
  pos(cfg.train.OFFICIAL_EPOCH_LENGTH, 'train.OFFICIAL_EPOCH_LENGTH');
  pos(cfg.optim.epochs, 'optim.epochs');
  pos(cfg.dino.head_n_prototypes, 'dino.head_n_prototypes');
  pos(cfg.ibot.head_n_prototypes, 'ibot.head_n_prototypes');
  pos(cfg.teacher.teacher_temp, 'teacher.teacher_temp');
  if (cfg.run.minutes !== null) pos(cfg.run.minutes, 'run.minutes (--minutes)');
  if (cfg.optim.warmup_epochs > cfg.optim.epochs) throw new Error(`optim.warmup_epochs (${cfg.optim.warmup_epochs}) exceeds optim.epochs (${cfg.optim.epochs})`);
  if (cfg.train.centering !== 'centering' && cfg.train.centering !== 'sinkhorn_knopp') {
    throw new Error(`train.centering '${cfg.train.centering}' must be centering or sinkhorn_knopp`);
  }
  const { global_crops_size: G, local_crops_size: Lc, local_crops_number: nl } = cfg.crops;
  const p = cfg.student.patch_size;
  if ((!distill && G % p) || (nl > 0 && Lc % p)) {
    throw new Error(`${distill ? '' : `crops.global_crops_size ${G} and `}crops.local_crops_size ${Lc} must be multiples of student.patch_size ${p}`);
  }
  if (!Number.isInteger(nl) || nl < 0) throw new Error(`crops.local_crops_number must be a non-negative integer, got ${nl}`);
  for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
    const [a, b] = cfg.crops[k];
    if (!(a! > 0 && b! <= 1 && a! <= b!)) throw new Error(`crops.${k} must be two numbers 0 < min <= max <= 1, got ${cfg.crops[k]}`);
  }
  const [mlo, mhi] = cfg.ibot.mask_ratio_min_max;
  if (!(mlo! >= 0 && mhi! <= 1 && mlo! <= mhi!)) throw new Error(`ibot.mask_ratio_min_max must be 0 <= min <= max <= 1, got ${cfg.ibot.mask_ratio_min_max}`);
  if (cfg.ibot.loss_weight > 0 && !(mhi! > 0 && cfg.ibot.mask_sample_probability > 0)) {
    throw new Error('ibot.loss_weight > 0 needs a positive ibot.mask_ratio_min_max and ibot.mask_sample_probability (official asserts)');
  }
  if (cfg.train.batch_size_per_gpu < 2 && cfg.dino.koleo_loss_weight > 0) throw new Error('KoLeo needs train.batch_size_per_gpu >= 2 (or dino.koleo_loss_weight 0)');
  if (cfg.student.drop_path_rate < 0 || cfg.student.drop_path_rate >= 1) throw new Error(`student.drop_path_rate must be in [0, 1), got ${cfg.student.drop_path_rate}`);
  if (!distill) v2BackboneConfig(cfg);
}
