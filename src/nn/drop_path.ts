// Stochastic depth. Two forms exist in the official code:
//  - per-sample DropPath (v1 and v2 for rates ≤ 0.1): a residual branch is zeroed for a random subset of samples and
//    scaled by 1/keep for the others;
//  - v2's batch-subset residual (rates > 0.1): the branch is computed only for max(int(B·(1−p)), 1) randomly chosen
//    samples and added to them scaled by B/subset.
// Randomness comes from a seeded host Rng (per-sample draws are tiny), so runs are reproducible and resumable.
import { tf, type Tensor } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { gatherRows } from './gather_rows.js';
import { Module } from './module.js';

/** Per-sample keep mask scaled by 1/keep, shape [B, 1, ..., 1] to broadcast over x. */
export function dropPath(x: Tensor, rate: number, rng: Rng): Tensor {
  if (rate <= 0) return x;
  return tf.tidy(() => {
    const B = x.shape[0]!;
    const keep = 1 - rate;
    const mask = new Float32Array(B);
    // Keep with probability `keep` (v1 writes floor(keep + U), v2 bernoulli(keep): the same distribution).
    for (let b = 0; b < B; b++) mask[b] = rng.random() < keep ? (keep > 0 ? 1 / keep : 0) : 0;
    return tf.mul(x, tf.tensor(mask, [B, ...x.shape.slice(1).map(() => 1)]));
  });
}

export class DropPath extends Module {
  constructor(readonly rate: number, readonly rng: Rng) {
    super();
  }

  forward(x: Tensor): Tensor {
    return this.training && this.rate > 0 ? dropPath(x, this.rate, this.rng) : x;
  }
}

/** DINOv2 drop_add_residual_stochastic_depth: x + (B/s)·residual(x[subset]) scattered back onto the subset rows. */
export function dropAddResidualStochasticDepth(x: Tensor, residual: (x: Tensor) => Tensor, rate: number, rng: Rng): Tensor {
  return tf.tidy(() => {
    const B = x.shape[0]!;
    const subsetSize = Math.max(Math.floor(B * (1 - rate)), 1);
    const chosen = rng.permutation(B).slice(0, subsetSize);
    // gatherRows: a gather whose gradient runs on every backend (tf.gather's needs UnsortedSegmentSum, absent on wasm).
    const r = residual(gatherRows(x, tf.tensor1d(chosen, 'int32')));
    // Row b of the scattered residual is r[j] when chosen[j] = b, else a zero row appended at index subsetSize.
    const padded = tf.concat([r, tf.zeros([1, ...r.shape.slice(1)])], 0);
    const rowOf = new Int32Array(B).fill(subsetSize);
    chosen.forEach((b, j) => (rowOf[b] = j));
    return tf.add(x, tf.mul(gatherRows(padded, tf.tensor1d(rowOf, 'int32')), B / subsetSize));
  });
}
