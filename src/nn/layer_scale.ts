// DINOv2 LayerScale: x · gamma with a learned per-channel gamma [D].
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { Module } from './module.js';

export class LayerScale extends Module {
  readonly gamma: Variable;

  constructor(readonly dim: number, initValues = 1e-5) {
    super();
    this.gamma = this.addParam('gamma', tf.fill([dim], initValues));
  }

  forward(x: Tensor): Tensor {
    return tf.mul(x, this.gamma);
  }
}
