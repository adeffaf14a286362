// k-NN evaluation during training (KnnMonitor: when, and where the results go): teacher-backbone CLS features of a bank (subset of a labelled train set) and of
// queries (subset of a labelled test set), weighted k-NN (eval/knn.ts, k=20, T=0.07 by default), and the same k-NN on
// raw pixels (the normalised eval crop flattened) as the baseline.
import { tf } from '../backend/tf.js';
import type { VisionTransformer } from '../models/vit.js';
import { parseDatasetSpec } from '../data/datasets.js';
import type { RunSettings } from './config.js';
import { appendJsonLine, type Log } from './run_loop.js';
import type { TrainProgress } from './run_checkpoint.js';
import { buildEvalBatch } from '../data/batch.js';
import type { Dataset } from '../data/datasets.js';
import type { EvalTransformOptions } from '../data/eval_transform.js';
import { knnEvaluate } from '../eval/knn.js';
import { matrix, type Matrix } from '../eval/topk.js';
import { concatArrays } from '../util/arrays.js';
import { Rng } from '../util/rng.js';

/** What the monitor needs of a backbone: [B, C, H, W] → CLS features [B, D]. */
export interface Backbone {
  forward(x: tf.Tensor): tf.Tensor;
}

export interface KnnSplit {
  dataset: Dataset;
  /** Dataset indices used (a fixed seeded subset). */
  indices: number[];
  /** Labels and normalised eval crops, built once. */
  labels: Int32Array;
  pixels: Float32Array;
}

/** A seeded subset of `n` indices (all when n >= length), sorted. */
export function subsetIndices(length: number, n: number, seed: number): number[] {
  if (n >= length) return Array.from({ length }, (_, i) => i);
  return new Rng([seed, 0x4b4e]).permutation(length).slice(0, n).sort((a, b) => a - b);
}

/** Reads and transforms the subset once (labels are required). */
export async function prepareKnnSplit(dataset: Dataset, n: number, seed: number, tf_: EvalTransformOptions): Promise<KnnSplit> {
  const indices = subsetIndices(dataset.length, n, seed);
  const built = await buildEvalBatch(dataset, tf_, indices);
  if (built.labels.some((l) => l < 0)) {
    throw new Error(`k-NN: dataset ${dataset.name} has no labels; use a folder with one subfolder per class (or mnist:train / mnist:test)`);
  }
  return { dataset, indices, labels: built.labels, pixels: built.crops[0]! };
}

/** CLS features of the split's eval crops through `backbone`, in batches. */
export function features(backbone: Backbone, split: KnnSplit, cropSize: number, batch = 256): Matrix {
  const per = 3 * cropSize * cropSize;
  const n = split.labels.length;
  let dim = 0;
  const parts: Float32Array[] = [];
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const f = tf.tidy(() => backbone.forward(tf.tensor(split.pixels.subarray(s * per, (s + b) * per), [b, 3, cropSize, cropSize])));
    dim = f.shape[1]!;
    parts.push(f.dataSync() as Float32Array);
    f.dispose();
  }
  return matrix(concatArrays(Float32Array, parts), n, dim);
}

export interface KnnScore {
  top1: number;
  top5: number;
}

export function knnScore(bank: Matrix, bankLabels: Int32Array, queries: Matrix, queryLabels: Int32Array, k: number, T: number): KnnScore {
  const r = knnEvaluate(bank, bankLabels, queries, queryLabels, { k, T }).results[0]!;
  return { top1: r.top1, top5: r.top5 };
}

/** The raw-pixel baseline: the same k-NN on the flattened normalised eval crops. */
export function rawPixelKnn(train: KnnSplit, test: KnnSplit, k: number, T: number): KnnScore {
  const d = train.pixels.length / train.labels.length;
  return knnScore(matrix(train.pixels, train.labels.length, d), train.labels, matrix(test.pixels, test.labels.length, d), test.labels, k, T);
}

export interface KnnPoint {
  iteration: number;
  top1: number;
  top5: number;
}

/**
 * k-NN top-1/top-5 of a backbone's CLS features at a few points of the run: the bank and queries are prepared once,
 * evaluated at iteration 0, `knn_evals` evenly spaced points and the end; results go to knn.jsonl and the progress.
 */
export class KnnMonitor {
  readonly history: KnnPoint[];
  rawPixels: { top1: number; top5: number } | null;
  train: KnnSplit | null = null;
  test: KnnSplit | null = null;
  private readonly points: Set<number>;

  constructor(
    private readonly settings: RunSettings,
    private readonly seed: number,
    private readonly cropSize: number,
    private readonly out: string,
    private total: number,
    progress: TrainProgress,
    private readonly log: Log,
  ) {
    this.history = (progress.knn as KnnPoint[] | undefined) ?? [];
    this.rawPixels = (progress.knn_raw_pixels as KnnMonitor['rawPixels'] | undefined) ?? null;
    this.points = new Set<number>();
    this.setTotal(total);
  }

  /** The evaluation points of a run of `total` iterations (a re-planned run moves the ones still ahead). */
  setTotal(total: number): void {
    this.total = total;
    this.points.clear();
    this.points.add(0).add(total);
    for (let i = 1; i <= this.settings.knn_evals; i++) this.points.add(Math.round((i * total) / (this.settings.knn_evals + 1)));
  }

  /** Loads the bank and queries (unless skipped or not configured) and scores raw pixels once per run. */
  async prepare(skip: boolean): Promise<void> {
    const s = this.settings;
    if (skip || !s.knn_train || !s.knn_test) return;
    const t0 = Date.now();
    const evalTf = { cropSize: this.cropSize, resizeSize: Math.round((this.cropSize * 256) / 224) };
    this.train = await prepareKnnSplit(await parseDatasetSpec(s.knn_train), s.knn_train_size, this.seed, evalTf);
    this.test = await prepareKnnSplit(await parseDatasetSpec(s.knn_test), s.knn_test_size, this.seed + 1, evalTf);
    if (!this.rawPixels) this.rawPixels = rawPixelKnn(this.train, this.test, s.knn_k, s.knn_temperature);
    this.log(`k-NN: bank ${this.train.labels.length} of ${s.knn_train}, queries ${this.test.labels.length} of ${s.knn_test}; raw pixels top-1 ${this.rawPixels.top1.toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  /** True at the evaluation points inside the run (the end is evaluated after the final save). */
  due(iteration: number): boolean {
    return this.points.has(iteration) && iteration !== this.total;
  }

  /** Scores `backbone` (named `label` in the log) at `iteration`, once per iteration. */
  evaluate(iteration: number, backbone: VisionTransformer, label: string): void {
    const { train, test } = this;
    if (!train || !test || this.history.some((p) => p.iteration === iteration)) return;
    const { knn_k: k, knn_temperature: T } = this.settings;
    const t0 = Date.now();
    const s = knnScore(features(backbone, train, this.cropSize), train.labels, features(backbone, test, this.cropSize), test.labels, k, T);
    this.history.push({ iteration, ...s });
    appendJsonLine(this.out, 'knn.jsonl', { iteration, top1: s.top1, top5: s.top5, k, T });
    this.log(`k-NN (${label} CLS, k=${k}) at iteration ${iteration}: top-1 ${s.top1.toFixed(2)}%, top-5 ${s.top5.toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  /** Puts the history into the progress saved with a checkpoint. */
  saveInto(progress: TrainProgress): void {
    progress.knn = this.history;
    progress.knn_raw_pixels = this.rawPixels;
  }
}
