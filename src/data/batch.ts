// Building one batch: read each sample, transform it, stack crop-major. Runs inside loader workers (loader_worker.ts)
// or in the main thread when a loader has workers: 0. Every random choice of sample `i` in epoch `e` comes from
// Rng([seed, e, i]), so a batch depends only on (seed, epoch, indices): not on which worker built it, nor when.
import type { Dataset, Sample } from './datasets.js';
import { evalTransform, type EvalTransformOptions } from './eval_transform.js';
import { DataAugmentationDINO } from './multicrop.js';
import { Rng } from '../util/rng.js';

export interface BuiltBatch {
  /** One [B, 3, S, S] array per tensor of the batch (crop index for multi-crop; a single one for eval). */
  crops: Float32Array[];
  /** Label per sample, -1 when the dataset has none. */
  labels: Int32Array;
  /** Dataset index of each sample actually used (an unreadable file is replaced by the next readable one). */
  indices: Int32Array;
}

export async function buildMultiCropBatch(dataset: Dataset, aug: DataAugmentationDINO, indices: number[], seed: number, epoch: number): Promise<BuiltBatch> {
  const c = aug.config;
  const sizes = [c.globalCropsSize, c.globalCropsSize, ...Array<number>(c.localCropsNumber).fill(c.localCropsSize)];
  const B = indices.length;
  const crops = sizes.map((s) => new Float32Array(B * 3 * s * s));
  const labels = new Int32Array(B);
  const used = new Int32Array(B);
  const reads = readAhead(dataset, indices);
  for (let b = 0; b < B; b++) {
    const sample = await reads.next(b);
    const views = aug.apply(sample.image, new Rng([seed, epoch, indices[b]!]));
    const all = [...views.global, ...views.local];
    for (let k = 0; k < all.length; k++) crops[k]!.set(all[k]!, b * all[k]!.length);
    labels[b] = sample.label ?? -1;
    used[b] = sample.index;
  }
  return { crops, labels, indices: used };
}

export async function buildEvalBatch(dataset: Dataset, opts: EvalTransformOptions, indices: number[]): Promise<BuiltBatch> {
  const S = opts.cropSize ?? 224;
  const B = indices.length;
  const images = new Float32Array(B * 3 * S * S);
  const labels = new Int32Array(B);
  const used = new Int32Array(B);
  const reads = readAhead(dataset, indices);
  for (let b = 0; b < B; b++) {
    const sample = await reads.next(b);
    images.set(evalTransform(sample.image, opts), b * 3 * S * S);
    labels[b] = sample.label ?? -1;
    used[b] = sample.index;
  }
  return { crops: [images], labels, indices: used };
}

/**
 * Reads samples a few ahead of the one being transformed (file reads and decoding run on libuv's threads meanwhile),
 * without holding a whole batch of decoded photos in memory.
 */
function readAhead(dataset: Dataset, indices: number[], window = 4) {
  const pending: Promise<Sample>[] = [];
  const start = (b: number) => {
    if (b < indices.length && !pending[b]) {
      pending[b] = dataset.get(indices[b]!);
      pending[b]!.catch(() => {}); // awaited in order by next(); avoids unhandled-rejection noise meanwhile
    }
  };
  return {
    next(b: number): Promise<Sample> {
      for (let k = b; k < b + window; k++) start(k);
      const p = pending[b]!;
      delete pending[b];
      return p;
    },
  };
}
