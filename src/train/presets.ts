// The recipes and presets: plain data, nothing else. A recipe is a complete SSLConfig (its policies, loss weights and
// default values); a preset is a partial config merged over one recipe. `dinots train` picks (cli/train_options.ts):
//   --recipe dino                   DINO_MNIST on mnist:* data, the `folder` preset on anything else
//   --recipe dinov2                 the `mnist-tiny` preset on mnist:* data without --config, DINOV2_OFFICIAL otherwise
//   --preset NAME                   that preset (it names its recipe)
// To add a preset: add an entry to PRESETS with its recipe and the keys it changes, nested (config.ts) or with
// main_dino.py's flat names (config_layers.ts ALIASES), e.g. 'mnist-wide': { recipe: 'dino', layer: { embed_dim: 96 } }.
// To change a default of `dinots train`, change the recipe (DINO_MNIST, DINOV2_OFFICIAL) or the preset it picks.
import type { RecipeName, SSLConfig } from './config.js';
import type { ConfigLayer } from './config_layers.js';

/** ssl_default_config.yaml (official values) with the DINOv2 policies, plus the dinots run defaults. */
export const DINOV2_OFFICIAL: SSLConfig = {
  recipe: 'dinov2',
  dino: { loss_weight: 1.0, head_n_prototypes: 65536, head_bottleneck_dim: 256, head_nlayers: 3, head_hidden_dim: 2048, head_use_bn: false, head_norm_last_layer: false, koleo_loss_weight: 0.1 },
  ibot: {
    loss_weight: 1.0, mask_sample_probability: 0.5, mask_ratio_min_max: [0.1, 0.5], separate_head: false,
    head_n_prototypes: 65536, head_bottleneck_dim: 256, head_nlayers: 3, head_hidden_dim: 2048, head_use_bn: false, head_norm_last_layer: false,
  },
  train: { batch_size_per_gpu: 64, seed: 0, OFFICIAL_EPOCH_LENGTH: 1250, centering: 'centering', schedule_epoch: 'official' },
  student: {
    arch: 'vit_large', patch_size: 16, embed_dim: null, depth: null, num_heads: null, drop_path_rate: 0.3, layerscale: 1e-5, drop_path_uniform: true,
    ffn_layer: 'mlp', qkv_bias: true, proj_bias: true, ffn_bias: true, num_register_tokens: 0, interpolate_antialias: false, interpolate_offset: 0.1,
    pos_embed_init: 'trunc_normal',
  },
  teacher: {
    momentum_teacher: 0.992, final_momentum_teacher: 1, warmup_teacher_temp: 0.04, teacher_temp: 0.07, warmup_teacher_temp_epochs: 30,
    warmup_teacher_temp_fraction: null, temp_schedule_by: 'iteration',
  },
  optim: {
    epochs: 100, weight_decay: 0.04, weight_decay_end: 0.4, base_lr: 0.004, lr: 0, warmup_epochs: 10, warmup_fraction: null, min_lr: 1e-6,
    clip_grad: 3.0, clip_grad_by: 'module', freeze_last_layer_epochs: 1, freeze_last_layer_fraction: null, freeze_last_layer_by: 'lr_schedule',
    scaling_rule: 'sqrt_wrt_1024', param_groups: 'dinov2', patch_embed_lr_mult: 0.2, layerwise_decay: 0.9, adamw_beta1: 0.9, adamw_beta2: 0.999,
  },
  crops: { global_crops_scale: [0.32, 1.0], local_crops_number: 8, local_crops_scale: [0.05, 0.32], global_crops_size: 224, local_crops_size: 96 },
  run: {
    data: 'mnist:train', minutes: null, steps: null, color_augment: true, blur_bug_compat: false, flip_p: null, solarize_p: null, blur_p: null, blur_sigma: null, final_eval: true,
    knn_train: null, knn_test: null, knn_train_size: 10000, knn_test_size: 2000, knn_k: 20, knn_temperature: 0.07, knn_evals: 4,
    checkpoint_minutes: 5, num_workers: 1, data_parallel: 1, backend: 'auto',
  },
  distill: { teacher: null, masking: false },
};

/**
 * The DINO (v1) recipe: main_dino.py's policies (the DINO loss alone; per-parameter clipping; last layer frozen by
 * dropping its gradients; v1 parameter groups; lr scaled by batch/256) with the default values of `dinots train`: a
 * CPU budget of minutes on small grayscale images (the built-in MNIST). Measured (docs/LEARNING.md: fixed-step probes,
 * k-NN of 2000 test digits against 10000 train digits) against the former defaults, each change at 1500 steps of 32:
 *  - pos_embed initialised as a 2-D sine-cosine grid (+8 points of CLS k-NN): with trunc_normal(0.02) the patch
 *    embeddings drown the position, and a 3-block ViT reads a bag of stroke pieces;
 *  - the official photometric augmentations without the ones that change a digit (flips, solarization), blur on half
 *    the global crops with sigma up to 1 px (+3): without any, the strokes' brightness and thickness are shortcuts;
 *  - a 2-layer head, hidden 512, bottleneck 128 (+1): a 3-layer head is slow to train in a few thousand steps;
 *  - all three together: +13 points on CLS + mean patch (52 -> 65 student, 49 -> 62 teacher);
 *  - not kept: 6 x 20 px local crops at global scale (0.7, 1) (+2 per image, 1.6x the step), teacher temperature
 *    0.03 -> 0.07 and momentum 0.996 (-8), lr x3 (-3), a 128-d model (+4 per step at 3x the step).
 * Kept from before: vit_nano_p4_28 narrowed to 64-d, depth 3, 2 heads (7x7 tokens), BatchNorm in the head (short
 * runs without it collapsed to a uniform teacher), K=1024, teacher temperature 0.04, momentum 0.99 -> 1, no drop path.
 * Time-planned runs express every schedule as a fraction of the planned steps and re-plan while running (plan.ts).
 */
export const DINO_MNIST: SSLConfig = {
  recipe: 'dino',
  dino: { loss_weight: 1, koleo_loss_weight: 0, head_n_prototypes: 1024, head_hidden_dim: 512, head_bottleneck_dim: 128, head_nlayers: 2, head_use_bn: true, head_norm_last_layer: true },
  // No iBOT term and no masks (mask_sample_probability 0); the head sizes only matter with a separate iBOT head.
  ibot: { ...DINOV2_OFFICIAL.ibot, loss_weight: 0, mask_sample_probability: 0 },
  train: { batch_size_per_gpu: 32, seed: 0, OFFICIAL_EPOCH_LENGTH: 1250, centering: 'centering', schedule_epoch: 'data' },
  student: { ...DINOV2_OFFICIAL.student, arch: 'vit_nano_p4_28', patch_size: 4, embed_dim: 64, depth: 3, num_heads: 2, drop_path_rate: 0, pos_embed_init: 'sincos' },
  teacher: {
    momentum_teacher: 0.99, final_momentum_teacher: 1, warmup_teacher_temp: 0.04, teacher_temp: 0.04, warmup_teacher_temp_epochs: 0,
    warmup_teacher_temp_fraction: null, temp_schedule_by: 'epoch',
  },
  optim: {
    epochs: 100, weight_decay: 0.04, weight_decay_end: 0.4, base_lr: 0.008, lr: 0, warmup_epochs: 10, warmup_fraction: 0.1, min_lr: 1e-6,
    clip_grad: 3.0, clip_grad_by: 'parameter', freeze_last_layer_epochs: 0, freeze_last_layer_fraction: null, freeze_last_layer_by: 'gradients',
    scaling_rule: 'linear_wrt_256', param_groups: 'dino', patch_embed_lr_mult: 1, layerwise_decay: 1, adamw_beta1: 0.9, adamw_beta2: 0.999,
  },
  crops: { global_crops_scale: [0.5, 1], local_crops_number: 4, local_crops_scale: [0.2, 0.5], global_crops_size: 28, local_crops_size: 12 },
  run: {
    data: 'mnist:train', minutes: 10, steps: null, color_augment: true, blur_bug_compat: false, flip_p: 0, solarize_p: 0, blur_p: [0.5, 0.5, 0.3], blur_sigma: [0.1, 1], final_eval: true,
    knn_train: 'mnist:train', knn_test: 'mnist:test', knn_train_size: 5000, knn_test_size: 1000, knn_k: 20, knn_temperature: 0.07, knn_evals: 2,
    checkpoint_minutes: 5, num_workers: 1, data_parallel: 1, backend: 'auto',
  },
  distill: { teacher: null, masking: false },
};

export const RECIPES: Record<RecipeName, SSLConfig> = { dino: DINO_MNIST, dinov2: DINOV2_OFFICIAL };

/**
 * DINOv2 on CPU-sized digits: the official recipe with a nano ViT on 28 px digits. The schedule lengths keep the
 * official proportions (warm-up 10%, last layer frozen 1% → here 5%) of a run planned by time.
 * Changed from the official values, because with them these runs collapse: within ~50 steps the centred teacher is
 * uniform (teacher entropy = ln K, every loss term at its uniform value) and stays there, so the DINO and iBOT terms
 * teach nothing and only KoLeo moves the features. Measured in 2-minute runs (vit_mini_p4_28, batch 32):
 *  - BatchNorm in the heads (head_use_bn, as DINO v1's use_bn_in_head) and a separate iBOT head: the digits'
 *    CLS tokens start nearly equal, and without BatchNorm the centred targets are uniform from the start;
 *  - teacher temperature 0.04 throughout (0.07 with BatchNorm still drifted to uniform), smaller heads (K 1024, hidden
 *    256, bottleneck 64: sharper random prototypes), no drop path;
 *  - LayerScale init 1 (1e-5 makes every block an identity at init: k-NN at chance, 10%);
 *  - base_lr 0.008, no layer-wise decay, no patch-embedding multiplier (faster for a few hundred steps).
 */
const MNIST_TINY: ConfigLayer = {
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

export interface Preset {
  recipe: RecipeName;
  /** The keys this preset changes (nested, or flat aliases), merged over the recipe. */
  layer: ConfigLayer;
  /** Look at the training images first and add the choices of folder_recipe.ts (crop, patch, augmentations). */
  fitToData?: boolean;
}

export const PRESETS: Record<string, Preset> = {
  /** A user's folder: the DINO recipe with crop sizes, patch size and augmentations fitted to the images and the
   * budget (folder_recipe.ts); no k-NN unless --knn-train / --knn-test. */
  folder: {
    recipe: 'dino',
    fitToData: true,
    layer: { run: { knn_train: null, knn_test: null } },
  },
  'mnist-tiny': { recipe: 'dinov2', layer: MNIST_TINY },
  /** A larger model for the same data (the distillation teacher of the MNIST demo); otherwise mnist-tiny. */
  'mnist-small': { recipe: 'dinov2', layer: { ...MNIST_TINY, student: { ...(MNIST_TINY.student as ConfigLayer), arch: 'vit_micro_p4_28' } } },
};

/** The preset `dinots train` uses when none is named: per recipe, by whether the data is MNIST. */
export function defaultPreset(recipe: RecipeName, data: string, hasConfigFiles: boolean): string | null {
  const mnist = data.startsWith('mnist:');
  if (recipe === 'dino') return mnist ? null : 'folder';
  return mnist && !hasConfigFiles ? 'mnist-tiny' : null;
}

/** `dinots distill` defaults between the preset and the user's layers: no stochastic depth, as the paper's distillation. */
export const DISTILL_DEFAULTS: ConfigLayer = { student: { drop_path_rate: 0 } };
