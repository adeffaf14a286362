// A tiny DINO run config for tests: 1-2 blocks of width 16 on 8 px crops of a few MNIST digits (cpu backend, seconds).
// A config layer in main_dino.py's flat names (aliases of the nested keys) over the dino recipe.
import type { ConfigLayer } from '../../src/train/config_layers.js';

export const TINY: ConfigLayer = {
  data: 'mnist:train:48',
  minutes: null,
  epochs: 1,
  warmup_epochs: 0,
  batch_size_per_gpu: 8,
  embed_dim: 16,
  depth: 2,
  num_heads: 2,
  drop_path_rate: 0.2,
  global_crop_size: 8,
  local_crop_size: 4,
  local_crops_number: 2,
  out_dim: 32,
  head_hidden_dim: 16,
  head_bottleneck_dim: 8,
  lr: 0.05,
  knn_train: null,
  knn_test: null,
  num_workers: 0,
  data_parallel: 1,
  backend: 'cpu',
};
