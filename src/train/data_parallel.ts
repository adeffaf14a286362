// Data parallelism on one machine, the way a run uses every core: the training thread is replica 0 and replicas
// 1..n-1 run in worker threads (replica_worker.ts), each with its own backend instance on its share of the cores.
// Each iteration the loader builds n·B images. Replica 0 posts every other replica its B images with the current
// student (and EMA teacher) weights and centers, computes its own gradients meanwhile, then averages the gradients,
// loss terms and pending center updates over the replicas (what DistributedDataParallel's all-reduce and the official
// update_center's all_reduce do) and takes the clipping, optimizer and EMA steps alone. The replicas keep no state
// between iterations, so re-planning, checkpoints and resume stay in the training thread unchanged.
// As on several GPUs: the batch is n·B, the lr scales with it (config_layers), and an epoch has n times fewer
// iterations. Unlike the official multi-GPU code, BatchNorm in the heads and Sinkhorn-Knopp normalise over each
// replica's own batch (official: SyncBatchNorm, all-reduced Sinkhorn sums); KoLeo is per replica in both.
import { Worker } from 'node:worker_threads';
import type { Tensor, Variable } from '../backend/tf.js';
import { tf } from '../backend/tf.js';
import type { SSLConfig } from './config.js';
import type { BatchBuilder } from './batches.js';
import type { LocalGradients, SSLTrainer, StepResult } from './trainer.js';

/** workerData of a replica. */
export interface ReplicaSetup {
  config: SSLConfig;
  replica: number;
  threads: number;
  backend: string;
}

type Named = [string, Float32Array][];

/** One iteration's work for a replica. */
export interface ReplicaWork {
  iteration: number;
  teacherTemp: number;
  /** Its B images of every crop, crop-major as the loader's. */
  crops: Float32Array[];
  student: Named;
  /** The EMA teacher's weights; null when distilling (the frozen teacher is loaded by the replica itself). */
  teacher: Named | null;
  /** DINO and iBOT centers, pending updates folded in. */
  centers: Float32Array[];
}

/** A replica's answer: its LocalGradients as host data, or the error that stopped it. */
export interface ReplicaReply {
  loss: number;
  terms: number[];
  targetStats: number[];
  maskedPatches: number;
  grads: Named;
  /** Pending DINO and iBOT center updates from its batch (null where none). */
  pending: (Float32Array | null)[];
  error?: string;
}

/** Each replica's share of the loader's crops (replica r gets images r·B .. (r+1)·B of every crop). */
export function splitCrops(crops: Float32Array[], replicas: number): Float32Array[][] {
  return Array.from({ length: replicas }, (_, r) =>
    crops.map((c) => {
      const n = c.length / replicas;
      return c.subarray(r * n, (r + 1) * n);
    }));
}

/** Copies of variables' values by name (host data that can be posted to a worker). */
export function hostValues(vars: Map<string, Variable>): Named {
  return [...vars].map(([n, v]) => [n, Float32Array.from(v.dataSync() as Float32Array)]);
}

/** Assigns host values to the variables of the same names. */
export function assignValues(vars: Map<string, Variable>, values: Named): void {
  for (const [n, data] of values) {
    const v = vars.get(n);
    if (!v) throw new Error(`data-parallel replica: no parameter ${n}`);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

/** LocalGradients as host data (for replica 0 to average). */
export function toReply(g: LocalGradients, pending: (Float32Array | null)[]): ReplicaReply {
  const grads: Named = [...g.grads].map(([n, t]) => [n, Float32Array.from(t.dataSync() as Float32Array)]);
  for (const t of [...g.grads.values(), g.studentOutput, g.teacherOutput]) t?.dispose();
  return { loss: g.loss, terms: g.terms, targetStats: g.targetStats, maskedPatches: g.maskedPatches, grads, pending };
}

/**
 * The mean over the replicas (replica 0's `own` and the others' replies, in replica order) of loss, terms, monitors and
 * gradients; the pending center updates of `trainer` are replaced by their mean. Takes ownership of `own`'s gradients.
 */
export function averageReplicas(trainer: SSLTrainer, own: LocalGradients, others: ReplicaReply[]): LocalGradients {
  if (others.length === 0) return own;
  const n = others.length + 1;
  /** The element-wise mean of `mine` and `theirs` (one row per other replica), in replica order. */
  const mean = <T extends Float32Array | number[]>(mine: T, theirs: ArrayLike<number>[], what: string): T => {
    for (const t of theirs) if (t.length !== mine.length) throw new Error(`data-parallel: a replica sent ${t.length} values of ${what}, not ${mine.length}`);
    for (let i = 0; i < mine.length; i++) mine[i] = (mine[i]! + theirs.reduce((s, t) => s + t[i]!, 0)) / n;
    return mine;
  };
  const missing = (what: string) => {
    throw new Error(`data-parallel: a replica sent no ${what}`);
  };
  const theirGrads = others.map((o) => new Map(o.grads));
  const grads = new Map<string, Tensor>();
  for (const [name, g] of own.grads) {
    const theirs = theirGrads.map((t) => t.get(name) ?? missing(`gradient of ${name}`));
    grads.set(name, tf.tensor(mean(Float32Array.from(g.dataSync() as Float32Array), theirs, `the gradient of ${name}`), g.shape));
    g.dispose();
  }
  [trainer.dinoLoss.center, trainer.ibotLoss.center].forEach((c, k) => {
    const mine = c.pendingValues();
    if (mine) c.setPendingValues(mean(mine, others.map((o) => o.pending[k] ?? missing('center update')), 'a center update'));
  });
  return {
    loss: mean([own.loss], others.map((o) => [o.loss]), 'the loss')[0]!,
    terms: mean([...own.terms], others.map((o) => o.terms), 'the loss terms'),
    targetStats: mean([...own.targetStats], others.map((o) => o.targetStats), 'the target statistics'),
    maskedPatches: own.maskedPatches + others.reduce((s, o) => s + o.maskedPatches, 0),
    grads, studentOutput: own.studentOutput, teacherOutput: own.teacherOutput,
  };
}

const BOOT = new URL('./replica_boot.cjs', import.meta.url);

interface Pending {
  resolve: (r: ReplicaReply) => void;
  reject: (e: Error) => void;
}

/** Replicas 1..n-1 in worker threads; replica 0 is the caller's thread. */
export class DataParallel {
  private readonly pending = new Map<Worker, Pending>();
  private failure: Error | null = null;
  private closing = false;

  private constructor(private readonly workers: Worker[]) {}

  /** Starts replicas 1..replicas-1 for `config` and waits until each has built its networks. */
  static async start(config: SSLConfig, replicas: number, threads: number, backend: string): Promise<DataParallel> {
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let r = 1; r < replicas; r++) {
      const w = new Worker(BOOT, { workerData: { config, replica: r, threads, backend } satisfies ReplicaSetup });
      ready.push(new Promise((resolve, reject) => {
        const onMessage = (m: { ready?: boolean; error?: string }) => {
          w.off('error', onError);
          w.off('exit', onExit);
          if (m.ready) resolve();
          else reject(new Error(`data-parallel replica ${r} failed to start: ${m.error}`));
        };
        const onError = (e: Error) => {
          w.off('message', onMessage);
          reject(new Error(`data-parallel replica ${r} failed to start: ${e.stack ?? e.message}`));
        };
        const onExit = (code: number) => reject(new Error(`data-parallel replica ${r} exited while starting (code ${code})`));
        w.once('message', onMessage);
        w.once('error', onError);
        w.once('exit', onExit);
      }));
      workers.push(w);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    const dp = new DataParallel(workers);
    workers.forEach((w, k) => {
      w.unref();
      w.on('message', (m: ReplicaReply) => dp.settle(w, m.error ? new Error(`data-parallel replica ${k + 1}: ${m.error}`) : null, m));
      w.on('error', (e) => dp.fail(new Error(`data-parallel replica ${k + 1} crashed: ${e.stack ?? e.message}`)));
      w.on('exit', (code) => void (!dp.closing && dp.fail(new Error(`data-parallel replica ${k + 1} exited unexpectedly (code ${code})`))));
    });
    return dp;
  }

  /** All replicas, the caller's included. */
  get replicas(): number {
    return this.workers.length + 1;
  }

  /** Posts replica r (1..n-1) its work `work(r)`; resolves to the replies in replica order. */
  run(work: (replica: number) => ReplicaWork): Promise<ReplicaReply[]> {
    if (this.failure) return Promise.reject(this.failure);
    const all = Promise.all(this.workers.map((w, k) => new Promise<ReplicaReply>((resolve, reject) => {
      this.pending.set(w, { resolve, reject });
      w.ref();
      w.postMessage(work(k + 1));
    })));
    // Idle replicas do not keep the process alive: a run that fails between steps exits without closing them.
    const idle = () => this.workers.forEach((w) => w.unref());
    all.then(idle, idle);
    return all;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private settle(w: Worker, error: Error | null, reply: ReplicaReply): void {
    if (error) return this.fail(error); // rejects this replica's promise with the others
    const p = this.pending.get(w);
    this.pending.delete(w);
    p?.resolve(reply);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}

/**
 * One iteration of `tr` on the loader's crops (n·B images): every replica's gradients on its share, averaged, then
 * one update in this thread. Without `dp`, the plain step of one replica. Throws NonFiniteLossError as SSLTrainer.step.
 */
export async function dataParallelStep(tr: SSLTrainer, dp: DataParallel | null, builder: BatchBuilder, crops: Float32Array[], it: number, distilling: boolean): Promise<StepResult> {
  const shares = splitCrops(crops, dp?.replicas ?? 1);
  const teacherTemp = tr.opts.schedules.teacherTemp.at(it);
  let others: Promise<ReplicaReply[]> | null = null;
  if (dp) {
    const student = hostValues(tr.studentParams);
    const teacher = distilling ? null : hostValues(tr.teacherParams);
    const centers = [tr.dinoLoss.center.values(), tr.ibotLoss.center.values()];
    others = dp.run((r) => ({ iteration: it, teacherTemp, crops: shares[r]!, student, teacher, centers }));
    others.catch(() => {}); // awaited below; a failure in this thread first must not leave it unhandled
  }
  const batch = builder.toBatch(shares[0]!, it);
  let own: LocalGradients;
  try {
    own = tr.computeGradients(batch, teacherTemp);
  } finally {
    builder.dispose(batch);
  }
  return tr.applyGradients(others ? averageReplicas(tr, own, await others) : own, it);
}
