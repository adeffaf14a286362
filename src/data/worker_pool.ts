// A small pool of loader worker threads: one batch request at a time per worker, first idle worker takes the next
// request. A worker that crashes (uncaught error, non-zero exit, terminated) fails every pending and later request
// with an error naming the worker, so a consumer never waits forever.
import { Worker } from 'node:worker_threads';
import type { BuiltBatch } from './batch.js';
import type { DatasetOptions, DatasetSource } from './datasets.js';
import type { EvalTransformOptions } from './eval_transform.js';
import type { MultiCropConfig } from './multicrop.js';

/** workerData of a loader worker: a multi-crop worker when `augmentation` is set, an eval worker otherwise. */
export interface WorkerSetup {
  source: DatasetSource;
  datasetOptions: Pick<DatasetOptions, 'maxSide'>;
  seed: number;
  augmentation?: MultiCropConfig;
  evalOptions?: EvalTransformOptions;
}

export interface WorkerRequest {
  id: number;
  epoch: number;
  indices: number[];
}

export interface WorkerReply {
  id: number;
  batch?: BuiltBatch;
  error?: string;
  /** Files found unreadable while building this batch: [path, reason]. */
  skipped: [string, string][];
  /** Time the worker spent on the batch. */
  ms: number;
}

interface Job {
  req: WorkerRequest;
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
}

const BOOT = new URL('./loader_worker_boot.cjs', import.meta.url);

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private failure: Error | null = null;
  private closing = false;
  private nextId = 0;

  constructor(size: number, setup: WorkerSetup) {
    for (let k = 0; k < size; k++) {
      const w = new Worker(BOOT, { workerData: setup });
      w.on('message', (reply: WorkerReply) => this.onReply(w, reply));
      w.on('error', (e) => this.fail(new Error(`data loader worker ${k} crashed: ${e.stack ?? e.message}`)));
      w.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`data loader worker ${k} exited unexpectedly (code ${code})`));
      });
      this.workers.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Queues a batch request; resolves with the worker's reply (which may carry an `error`). */
  run(epoch: number, indices: number[]): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new Error('data loader is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req: { id: this.nextId++, epoch, indices }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const w of this.workers) {
      if (this.queue.length === 0) return;
      if (this.busy.has(w)) continue;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      w.postMessage(job.req);
    }
  }

  private onReply(w: Worker, reply: WorkerReply): void {
    const job = this.busy.get(w);
    this.busy.delete(w);
    if (job && job.req.id === reply.id) job.resolve(reply);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const job of [...this.busy.values(), ...this.queue]) job.reject(e);
    this.busy.clear();
    this.queue.length = 0;
    void this.close();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const job of [...this.busy.values(), ...this.queue]) job.reject(new Error('data loader closed'));
    this.busy.clear();
    this.queue.length = 0;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
