// torch.nn.Linear: weight [out, in], optional bias [out].
import type { Tensor, Variable } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { linear } from './functional.js';
import { constant, torchDefaultBound, truncNormal, uniform } from './init.js';
import { Module } from './module.js';

export interface LinearOptions {
  bias?: boolean;
  /** Seeded init: trunc_normal(std) weight + zero bias when `std` is given (timm / DINO init), else torch's default. */
  rng: Rng;
  std?: number;
}

export class Linear extends Module {
  readonly weight: Variable;
  readonly bias: Variable | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions) {
    super();
    const { bias = true, rng, std } = opts;
    const bound = torchDefaultBound(inFeatures);
    this.weight = this.addParam(
      'weight',
      std === undefined ? uniform(rng, [outFeatures, inFeatures], bound) : truncNormal(rng, [outFeatures, inFeatures], std),
    );
    this.bias = bias
      ? this.addParam('bias', std === undefined ? uniform(rng, [outFeatures], bound) : constant([outFeatures], 0))
      : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
