// The resolved settings of a DINO (v1) training run. Field names are the official main_dino.py argument names
// (snake_case) so `config.json` reads like the official `args`; the dinots additions (data specs, time budget, crop
// sizes, head sizes, k-NN evaluation) follow the same style.
import { NAMED_CONFIGS, SIZES, dinoConfig, namedConfig, type ViTConfig } from '../models/config.js';
import type { RunSettings } from './run_settings.js';

/** The dinots run settings (data, time budget, k-NN, checkpoints, workers, backend) come from RunSettings. */
export interface TrainConfig extends RunSettings {
  // Model (official names)
  arch: string;
  patch_size: number;
  /** Overrides of the arch's width / depth / heads (null = the arch's own). */
  embed_dim: number | null;
  depth: number | null;
  num_heads: number | null;
  out_dim: number;
  norm_last_layer: boolean;
  use_bn_in_head: boolean;
  /** DINOHead sizes (official: 2048 / 256, fixed in the code). */
  head_hidden_dim: number;
  head_bottleneck_dim: number;
  drop_path_rate: number;
  // Teacher and loss
  momentum_teacher: number;
  warmup_teacher_temp: number;
  teacher_temp: number;
  warmup_teacher_temp_epochs: number;
  // Optimisation
  lr: number;
  min_lr: number;
  warmup_epochs: number;
  weight_decay: number;
  weight_decay_end: number;
  clip_grad: number;
  freeze_last_layer: number;
  batch_size_per_gpu: number;
  /** Number of epochs (passes over the data). With `minutes` set, the planner replaces it by a planned step count. */
  epochs: number;
  // Multi-crop
  global_crops_scale: [number, number];
  local_crops_number: number;
  local_crops_scale: [number, number];
  global_crop_size: number;
  local_crop_size: number;
  /** Colour jitter / grayscale / blur / solarize of the official pipeline (off for grayscale digits). */
  color_augment: boolean;
  seed: number;
  // dinots run settings besides RunSettings
  /** When planning by time: fraction of the planned steps used for the linear lr warm-up. */
  warmup_fraction: number;
}

/**
 * The default recipe, tuned for `dinots train` on MNIST in ~10 minutes on 2 busy cores (a few hundred steps):
 * vit_nano_p4_28 (96-d, depth 4, 49 patches), a small head (K=1024, 256 hidden, 64 bottleneck) with BatchNorm
 * (without it these short runs collapsed to a uniform teacher), batch 32, 2x28 + 4x12 crops with larger scales than
 * ImageNet's (a digit's stroke fragments say little), lr 0.008 (peak 1e-3), teacher momentum 0.99 (cosine to 1), no
 * drop path, no colour/blur/flip augmentation for grayscale digits. Official values elsewhere.
 * The nano backbone is narrowed to 64-d, depth 3, 2 heads: in a fixed time budget it runs ~2x the steps, and in
 * paired 6-minute runs it reached a higher k-NN (36% at 750 steps vs 33% at ~250-300 for the 96-d depth-4 model);
 * a 2x higher lr, teacher momentum 0.96 or 0.996 and K=256 were no better (momentum 0.96 and 2x lr were worse).
 */
export const DEFAULT_CONFIG: TrainConfig = {
  arch: 'vit_nano_p4_28',
  patch_size: 4,
  embed_dim: 64,
  depth: 3,
  num_heads: 2,
  out_dim: 1024,
  norm_last_layer: true,
  use_bn_in_head: true,
  head_hidden_dim: 256,
  head_bottleneck_dim: 64,
  drop_path_rate: 0,
  momentum_teacher: 0.99,
  warmup_teacher_temp: 0.04,
  teacher_temp: 0.04,
  warmup_teacher_temp_epochs: 0,
  lr: 0.008,
  min_lr: 1e-6,
  warmup_epochs: 10,
  weight_decay: 0.04,
  weight_decay_end: 0.4,
  clip_grad: 3.0,
  freeze_last_layer: 0,
  batch_size_per_gpu: 32,
  epochs: 100,
  global_crops_scale: [0.5, 1],
  local_crops_number: 4,
  local_crops_scale: [0.2, 0.5],
  global_crop_size: 28,
  local_crop_size: 12,
  color_augment: false,
  seed: 0,
  data: 'mnist:train',
  minutes: 10,
  warmup_fraction: 0.1,
  knn_train: 'mnist:train',
  knn_test: 'mnist:test',
  knn_train_size: 5000,
  knn_test_size: 1000,
  knn_k: 20,
  knn_temperature: 0.07,
  knn_evals: 2,
  checkpoint_minutes: 5,
  num_workers: 1,
  backend: 'auto',
};

/** The backbone config of `arch`: an official name (vit_tiny / vit_small / vit_base + patch_size) or a dinots named config. */
export function backboneConfig(cfg: TrainConfig): ViTConfig {
  const official: Record<string, keyof typeof SIZES> = { vit_tiny: 'tiny', vit_small: 'small', vit_base: 'base' };
  let vit: ViTConfig;
  if (official[cfg.arch]) vit = dinoConfig(official[cfg.arch]!, cfg.patch_size, { imgSize: cfg.global_crop_size });
  else if (NAMED_CONFIGS[cfg.arch]) vit = { ...namedConfig(cfg.arch), patchSize: cfg.patch_size };
  else {
    throw new Error(`--arch '${cfg.arch}' is unknown: use vit_tiny, vit_small, vit_base or one of ${Object.keys(NAMED_CONFIGS).join(', ')}`);
  }
  return {
    ...vit,
    embedDim: cfg.embed_dim ?? vit.embedDim,
    depth: cfg.depth ?? vit.depth,
    numHeads: cfg.num_heads ?? vit.numHeads,
    dropPathRate: cfg.drop_path_rate,
  };
}

/** Checks ranges and combinations; throws an error naming the argument. */
export function validateConfig(cfg: TrainConfig): void {
  const pos = (k: keyof TrainConfig) => {
    const v = cfg[k] as number;
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${k} must be a positive number, got ${v}`);
  };
  (['patch_size', 'out_dim', 'head_hidden_dim', 'head_bottleneck_dim', 'batch_size_per_gpu', 'global_crop_size', 'local_crop_size', 'teacher_temp'] as const).forEach(pos);
  if (cfg.minutes !== null) pos('minutes');
  else pos('epochs');
  for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
    const [a, b] = cfg[k];
    if (!(a > 0 && b <= 1 && a <= b)) throw new Error(`--${k} must be two numbers 0 < min <= max <= 1, got ${cfg[k].join(' ')}`);
  }
  if (cfg.global_crop_size % cfg.patch_size || cfg.local_crop_size % cfg.patch_size) {
    throw new Error(`crop sizes (${cfg.global_crop_size}, ${cfg.local_crop_size}) must be multiples of --patch_size ${cfg.patch_size}`);
  }
  if (!(cfg.momentum_teacher >= 0 && cfg.momentum_teacher <= 1)) throw new Error(`--momentum_teacher must be in [0, 1], got ${cfg.momentum_teacher}`);
  if (!Number.isInteger(cfg.local_crops_number) || cfg.local_crops_number < 0) {
    throw new Error(`--local_crops_number must be a non-negative integer, got ${cfg.local_crops_number}`);
  }
  if (cfg.drop_path_rate < 0 || cfg.drop_path_rate >= 1) throw new Error(`--drop_path_rate must be in [0, 1), got ${cfg.drop_path_rate}`);
  if (cfg.clip_grad < 0) throw new Error(`--clip_grad must be >= 0 (0 = no clipping), got ${cfg.clip_grad}`);
  backboneConfig(cfg);
}
