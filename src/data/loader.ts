// Batch loaders over a Dataset, built in worker threads (each worker reads, decodes and transforms whole batches).
//
//   const loader = new MultiCropLoader(dataset, { batchSize: 64, augmentation: dinoV2Augmentation(), seed: 0 });
//   for await (const b of loader.epoch(epoch, startIteration)) {
//     const views = b.crops.map((data, k) => tf.tensor4d(data, [b.labels.length, 3, b.cropSizes[k], b.cropSizes[k]]));
//   }
//   loader.stats()   // { imagesPerSec, waitSeconds, ... } of the current / last epoch
//   await loader.close()
//
//   const ev = new EvalLoader(dataset, { batchSize: 128, transform: { resizeSize: 256, cropSize: 224 } });
//   for await (const b of ev.batches()) { b.images: [B, 3, 224, 224], b.labels, b.indices }   // dataset order
//
// Determinism: epoch e visits Rng([seed, e]).permutation(n) (or 0..n-1 without shuffle) in batches of batchSize
// (the last partial one dropped with dropLast); sample i is augmented with Rng([seed, e, i]). So batch (e, it) is
// the same for any number of workers, any timing, and when resuming with epoch(e, it).
// `workers: 0` builds batches in the calling thread (any Dataset; no source() needed). Workers need dataset.source().
// Unreadable files are replaced by the next readable one (datasets.ts), warned about once, and counted in `skipped`.
import { availableParallelism } from 'node:os';
import { buildEvalBatch, buildMultiCropBatch, type BuiltBatch } from './batch.js';
import type { Dataset } from './datasets.js';
import type { EvalTransformOptions } from './eval_transform.js';
import { DataAugmentationDINO, dinoV1Augmentation, type MultiCropConfig } from './multicrop.js';
import { WorkerPool, type WorkerSetup } from './worker_pool.js';
import { Rng } from '../util/rng.js';

export interface LoaderOptions {
  batchSize: number;
  /** Worker threads (default: the number of cores, at most 8); 0 builds batches in the calling thread. */
  workers?: number;
  /** Batches requested ahead of the consumer (default 2 per worker, at least 2). */
  prefetch?: number;
  /** Downscale images whose longest side exceeds this while decoding. */
  maxSide?: number;
}

export interface LoaderStats {
  batches: number;
  images: number;
  /** Wall time since the epoch started. */
  seconds: number;
  imagesPerSec: number;
  /** Time the consumer spent waiting for batches (0 when the loader keeps ahead). */
  waitSeconds: number;
  /** Worker time per image (decode + transforms), summed over workers. */
  workerMsPerImage: number;
  skipped: number;
}

/** Shared machinery: a worker pool or the calling thread, ordered prefetching, skipped-file reports and stats. */
class BatchEngine {
  private readonly pool: WorkerPool | null;
  private readonly prefetch: number;
  readonly skippedFiles = new Map<string, string>();
  private st = { start: 0, batches: 0, images: 0, wait: 0, workerMs: 0 };

  constructor(
    private readonly dataset: Dataset,
    private readonly setup: Omit<WorkerSetup, 'source'>,
    opts: LoaderOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`loader: batchSize ${opts.batchSize} must be a positive integer`);
    const workers = opts.workers ?? Math.min(availableParallelism(), 8);
    if (!Number.isInteger(workers) || workers < 0) throw new Error(`loader: workers ${workers} must be an integer >= 0`);
    this.prefetch = Math.max(1, opts.prefetch ?? Math.max(2, 2 * workers));
    this.pool = workers > 0 ? new WorkerPool(workers, { ...setup, source: dataset.source() }) : null;
  }

  private local?: DataAugmentationDINO | null;

  private async build(epoch: number, indices: number[]): Promise<BuiltBatch> {
    if (!this.pool) {
      const t0 = performance.now();
      this.local ??= this.setup.augmentation ? new DataAugmentationDINO(this.setup.augmentation) : null;
      const b = this.local
        ? await buildMultiCropBatch(this.dataset, this.local, indices, this.setup.seed, epoch)
        : await buildEvalBatch(this.dataset, this.setup.evalOptions ?? {}, indices);
      this.st.workerMs += performance.now() - t0;
      return b;
    }
    const reply = await this.pool.run(epoch, indices);
    this.st.workerMs += reply.ms;
    for (const [path, reason] of reply.skipped) {
      if (this.skippedFiles.has(path)) continue;
      this.skippedFiles.set(path, reason);
      console.warn(`warning: skipping unreadable image ${path}: ${reason}`);
    }
    if (reply.error) throw new Error(`data loader: building a batch of ${this.dataset.name} (epoch ${epoch}) failed: ${reply.error}`);
    return reply.batch!;
  }

  /** Yields the batches of `plan` in order, keeping `prefetch` of them in flight. */
  async *run(epoch: number, plan: number[][]): AsyncGenerator<BuiltBatch> {
    this.st = { start: performance.now(), batches: 0, images: 0, wait: 0, workerMs: 0 };
    const inFlight: Promise<BuiltBatch>[] = [];
    let next = 0;
    const fill = () => {
      while (next < plan.length && inFlight.length < this.prefetch) {
        const p = this.build(epoch, plan[next++]!);
        p.catch(() => {}); // awaited in order below
        inFlight.push(p);
      }
    };
    for (let k = 0; k < plan.length; k++) {
      fill();
      const t0 = performance.now();
      const batch = await inFlight.shift()!;
      this.st.wait += performance.now() - t0;
      this.st.batches++;
      this.st.images += batch.labels.length;
      fill();
      yield batch;
    }
  }

  stats(): LoaderStats {
    const seconds = (performance.now() - this.st.start) / 1000;
    return {
      batches: this.st.batches,
      images: this.st.images,
      seconds,
      imagesPerSec: seconds > 0 ? this.st.images / seconds : 0,
      waitSeconds: this.st.wait / 1000,
      workerMsPerImage: this.st.images ? this.st.workerMs / this.st.images : 0,
      skipped: this.pool ? this.skippedFiles.size : this.dataset.skipped,
    };
  }

  close(): Promise<void> {
    return this.pool?.close() ?? Promise.resolve();
  }
}

// -------------------------------------------------------------------------------------------------- multi-crop

export interface MultiCropLoaderOptions extends LoaderOptions {
  augmentation?: MultiCropConfig;
  seed?: number;
  /** Drop the last incomplete batch of an epoch (default true, like the official training loaders). */
  dropLast?: boolean;
  /** Visit the dataset in a seeded random order each epoch (default true). */
  shuffle?: boolean;
}

export interface MultiCropBatch {
  /** Crop-major: crops[k] is [B, 3, S_k, S_k] for crop k (the 2 global crops, then the locals). */
  crops: Float32Array[];
  cropSizes: number[];
  labels: Int32Array;
  indices: Int32Array;
  epoch: number;
  iteration: number;
}

export class MultiCropLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly augmentation: MultiCropConfig;
  readonly iterationsPerEpoch: number;
  private readonly shuffle: boolean;
  private readonly engine: BatchEngine;

  constructor(
    readonly dataset: Dataset,
    opts: MultiCropLoaderOptions,
  ) {
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    this.augmentation = opts.augmentation ?? dinoV1Augmentation();
    new DataAugmentationDINO(this.augmentation); // validates the config here rather than in every worker
    this.shuffle = opts.shuffle ?? true;
    const n = dataset.length;
    this.iterationsPerEpoch = (opts.dropLast ?? true) ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    if (this.iterationsPerEpoch === 0) {
      throw new Error(`loader: ${dataset.name} has ${n} images, fewer than one batch of ${this.batchSize} (lower batchSize or set dropLast: false)`);
    }
    this.engine = new BatchEngine(dataset, { seed: this.seed, augmentation: this.augmentation, datasetOptions: { maxSide: opts.maxSide } }, opts);
  }

  get cropSizes(): number[] {
    const a = this.augmentation;
    return [a.globalCropsSize, a.globalCropsSize, ...Array<number>(a.localCropsNumber).fill(a.localCropsSize)];
  }

  /** Dataset indices of batch `iteration` of `epoch`. */
  batchIndices(epoch: number, iteration: number): number[] {
    return this.order(epoch).slice(iteration * this.batchSize, (iteration + 1) * this.batchSize);
  }

  private order(epoch: number): number[] {
    const n = this.dataset.length;
    return this.shuffle ? new Rng([this.seed, epoch]).permutation(n) : Array.from({ length: n }, (_, i) => i);
  }

  /** The batches of `epoch`, from `startIteration` (to resume) to the end of the epoch. */
  async *epoch(epoch: number, startIteration = 0): AsyncGenerator<MultiCropBatch> {
    if (!Number.isInteger(startIteration) || startIteration < 0 || startIteration > this.iterationsPerEpoch) {
      throw new Error(`loader: startIteration ${startIteration} outside 0..${this.iterationsPerEpoch}`);
    }
    const order = this.order(epoch);
    const plan: number[][] = [];
    for (let it = startIteration; it < this.iterationsPerEpoch; it++) plan.push(order.slice(it * this.batchSize, (it + 1) * this.batchSize));
    const sizes = this.cropSizes;
    let iteration = startIteration;
    for await (const b of this.engine.run(epoch, plan)) {
      yield { crops: b.crops, cropSizes: sizes, labels: b.labels, indices: b.indices, epoch, iteration: iteration++ };
    }
  }

  stats(): LoaderStats {
    return this.engine.stats();
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

// -------------------------------------------------------------------------------------------------- eval

export interface EvalLoaderOptions extends LoaderOptions {
  transform?: EvalTransformOptions;
}

export interface EvalBatch {
  /** [B, 3, cropSize, cropSize], normalised. */
  images: Float32Array;
  cropSize: number;
  labels: Int32Array;
  indices: Int32Array;
}

/** Every image once, in dataset order, through the eval transform; the last batch may be smaller. */
export class EvalLoader {
  private readonly engine: BatchEngine;
  readonly transform: EvalTransformOptions;

  constructor(
    readonly dataset: Dataset,
    private readonly opts: EvalLoaderOptions,
  ) {
    this.transform = opts.transform ?? {};
    this.engine = new BatchEngine(dataset, { seed: 0, evalOptions: this.transform, datasetOptions: { maxSide: opts.maxSide } }, opts);
  }

  get numBatches(): number {
    return Math.ceil(this.dataset.length / this.opts.batchSize);
  }

  async *batches(): AsyncGenerator<EvalBatch> {
    const B = this.opts.batchSize;
    const plan: number[][] = [];
    for (let s = 0; s < this.dataset.length; s += B) plan.push(Array.from({ length: Math.min(B, this.dataset.length - s) }, (_, k) => s + k));
    const cropSize = this.transform.cropSize ?? 224;
    for await (const b of this.engine.run(0, plan)) yield { images: b.crops[0]!, cropSize, labels: b.labels, indices: b.indices };
  }

  stats(): LoaderStats {
    return this.engine.stats();
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}
