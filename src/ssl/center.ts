// The teacher "center" of DINO / iBOT centering: an EMA of the teacher's mean output,
//   center <- center * momentum + batchMean * (1 - momentum).
// DINOv2 splits the update in two (official reduce_center_update / apply_center_update): `setPending` records the
// batch mean, and `apply` folds it in just before the next teacher softmax. DINO v1 calls both back to back.
// The center is a non-trainable tf.Variable, so it survives tf.tidy and never receives gradients.
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import type { StateDict } from '../checkpoint/types.js';

export class TeacherCenter {
  readonly value: Variable;
  private pending: Tensor | null = null;

  /** `shape` is [1, K] (CLS) or [1, 1, K] (patches); `name` is used in error messages. */
  constructor(
    readonly shape: number[],
    readonly momentum: number,
    private readonly name: string,
  ) {
    this.value = tf.variable(tf.zeros(shape), false);
  }

  /** Records `batchMean` (same shape as the center, or broadcastable to it) for the next apply(). Replaces any earlier pending one. */
  setPending(batchMean: Tensor): void {
    this.pending?.dispose();
    this.pending = tf.keep(batchMean.reshape(this.shape));
  }

  get hasPending(): boolean {
    return this.pending !== null;
  }

  /** Forgets a pending batch mean (a step that is thrown away, e.g. with a non-finite loss). */
  dropPending(): void {
    this.pending?.dispose();
    this.pending = null;
  }

  /** The pending batch mean as host data (null when there is none): what data-parallel replicas average. */
  pendingValues(): Float32Array | null {
    return this.pending ? Float32Array.from(this.pending.dataSync() as Float32Array) : null;
  }

  /** Replaces the pending batch mean by host data, e.g. the replicas' average of theirs. */
  setPendingValues(values: Float32Array): void {
    tf.tidy(() => this.setPending(tf.tensor(values, this.shape)));
  }

  /** The center with any pending update folded in, as host data (what a replica's center must equal before a step). */
  values(): Float32Array {
    this.apply();
    return Float32Array.from(this.value.dataSync() as Float32Array);
  }

  /** Folds a pending batch mean into the center (no-op when there is none). */
  apply(): void {
    if (!this.pending) return;
    const pending = this.pending;
    this.pending = null;
    const m = this.momentum;
    tf.tidy(() => this.value.assign(this.value.mul(m).add(pending.mul(1 - m))));
    pending.dispose();
  }

  /** softmax((t - center) / temp) over the last axis of t [..., K], after folding in any pending update; keeps t's shape. */
  softmaxCentered(t: Tensor, temp: number): Tensor {
    this.apply();
    return tf.tidy(() => tf.softmax(tf.div(tf.sub(t, this.value.reshape([-1])), temp), -1));
  }

  /** Records the mean of the rows of t [n, K] as the pending update. */
  setPendingRowMean(t: Tensor): void {
    tf.tidy(() => this.setPending(tf.div(tf.sum(t, 0, true), t.shape[0]!)));
  }

  /** Sets the center from host data (e.g. a checkpoint); drops any pending update. */
  set(values: Float32Array | number[]): void {
    const n = this.shape.reduce((a, b) => a * b, 1);
    if (values.length !== n) throw new Error(`${this.name}: center needs ${n} values (shape [${this.shape}]), got ${values.length}`);
    this.pending?.dispose();
    this.pending = null;
    tf.tidy(() => this.value.assign(tf.tensor(Float32Array.from(values), this.shape)));
  }

  /** {center} as a host tensor. A pending update is applied first: the next teacher softmax would apply it anyway. */
  stateDict(): StateDict {
    return new Map([['center', { dtype: 'float32', shape: [...this.shape], data: this.values() }]]);
  }

  /** Restores `center` from a state dict (a [K] / [1,K] / [1,1,K] float32 tensor with K values). */
  loadStateDict(sd: StateDict): void {
    const c = sd.get('center');
    if (!c) throw new Error(`${this.name}: state dict has no 'center' (keys: ${[...sd.keys()].join(', ') || 'none'})`);
    this.set(Float32Array.from(c.data as ArrayLike<number>));
  }

  dispose(): void {
    this.pending?.dispose();
    this.pending = null;
    this.value.dispose();
  }
}

/** Base of the losses that own a teacher center: their checkpoint state ('center') and disposal are the center's. */
export abstract class CenteredLoss {
  constructor(readonly center: TeacherCenter) {}

  stateDict(): StateDict {
    return this.center.stateDict();
  }

  loadStateDict(sd: StateDict): void {
    this.center.loadStateDict(sd);
  }

  dispose(): void {
    this.center.dispose();
  }
}
