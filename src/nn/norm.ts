// LayerNorm (last axis) and BatchNorm1d (for the optional BN variant of the DINO head).
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { layerNorm } from './functional.js';
import { Module } from './module.js';

export class LayerNorm extends Module {
  readonly weight: Variable;
  readonly bias: Variable;

  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.weight = this.addParam('weight', tf.ones([dim]));
    this.bias = this.addParam('bias', tf.zeros([dim]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/**
 * torch.nn.BatchNorm1d on [B, C] input: batch statistics (biased variance) while training, updating the running
 * mean / unbiased running variance with `momentum`; running statistics in eval.
 */
export class BatchNorm1d extends Module {
  readonly weight: Variable;
  readonly bias: Variable;
  readonly runningMean: Variable;
  readonly runningVar: Variable;
  readonly numBatchesTracked: Variable;

  constructor(readonly dim: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.addParam('weight', tf.ones([dim]));
    this.bias = this.addParam('bias', tf.zeros([dim]));
    this.runningMean = this.addBuffer('running_mean', tf.zeros([dim]));
    this.runningVar = this.addBuffer('running_var', tf.ones([dim]));
    this.numBatchesTracked = this.addBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.dim) throw new Error(`BatchNorm1d(${this.dim}): expected [B, ${this.dim}] input, got [${x.shape}]`);
    return tf.tidy(() => {
      if (!this.training) {
        const inv = tf.rsqrt(tf.add(this.runningVar, this.eps));
        return tf.add(tf.mul(tf.mul(tf.sub(x, this.runningMean), inv), this.weight), this.bias);
      }
      const n = x.shape[0]!;
      const mean = tf.mean(x, 0);
      const variance = tf.mean(tf.square(tf.sub(x, mean)), 0);
      // Variable.assign is not differentiated, so the running-stat update does not enter the gradient.
      const m = this.momentum;
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
      this.numBatchesTracked.assign(tf.add(this.numBatchesTracked, tf.scalar(1, 'int32')));
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.eps))), this.weight), this.bias);
    });
  }
}
