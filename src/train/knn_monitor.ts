// k-NN evaluation during training: teacher-backbone CLS features of a bank (subset of a labelled train set) and of
// queries (subset of a labelled test set), weighted k-NN (eval/knn.ts, k=20, T=0.07 by default), and the same k-NN on
// raw pixels (the normalised eval crop flattened) as the baseline.
import { tf } from '../backend/tf.js';
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
