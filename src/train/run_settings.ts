// The dinots run settings both recipes share (v1: flat in TrainConfig; DINOv2: the config's `run` section).

export interface RunSettings {
  /** Training images (a dataset spec, see data/datasets.ts). */
  data: string;
  /** Wall-clock budget in minutes for the training steps; null = train the configured epochs. */
  minutes: number | null;
  /** Colour jitter / grayscale / blur / solarize of the official pipeline, and flips (off for grayscale digits). */
  color_augment: boolean;
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
  backend: string;
}
