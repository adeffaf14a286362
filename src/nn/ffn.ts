// Feed-forward layers of a ViT block: the GELU MLP (fc1/fc2) and DINOv2's fused SwiGLU (w12/w3).
import { tf, type Tensor } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { linearGelu, silu } from './functional.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

export interface FfnOptions {
  bias?: boolean;
  rng: Rng;
  std?: number;
}

export abstract class FeedForward extends Module {
  abstract forward(x: Tensor): Tensor;
}

/** fc1 D→hidden, exact GELU, fc2 hidden→D (dropout 0). */
export class Mlp extends FeedForward {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(readonly inFeatures: number, readonly hiddenFeatures: number, opts: FfnOptions) {
    super();
    const o = { bias: opts.bias ?? true, rng: opts.rng, std: opts.std };
    this.fc1 = this.addModule('fc1', new Linear(inFeatures, hiddenFeatures, o));
    this.fc2 = this.addModule('fc2', new Linear(hiddenFeatures, inFeatures, o));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.fc2.forward(linearGelu(x, this.fc1.weight, this.fc1.bias)));
  }
}

/** Hidden width of DINOv2's SwiGLUFFNFused for a nominal MLP width (D·mlpRatio): 2/3 of it, rounded up to 8. */
export function swigluHiddenDim(hidden: number): number {
  return Math.floor((Math.floor((hidden * 2) / 3) + 7) / 8) * 8;
}

/** w12 D→2h split into halves x1|x2, silu(x1)·x2, w3 h→D. `hiddenFeatures` is the nominal D·mlpRatio. */
export class SwiGLUFFN extends FeedForward {
  readonly w12: Linear;
  readonly w3: Linear;
  readonly hidden: number;

  constructor(readonly inFeatures: number, hiddenFeatures: number, opts: FfnOptions) {
    super();
    this.hidden = swigluHiddenDim(hiddenFeatures);
    const o = { bias: opts.bias ?? true, rng: opts.rng, std: opts.std };
    this.w12 = this.addModule('w12', new Linear(inFeatures, 2 * this.hidden, o));
    this.w3 = this.addModule('w3', new Linear(this.hidden, inFeatures, o));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const [x1, x2] = tf.split(this.w12.forward(x), 2, -1) as [Tensor, Tensor];
      return this.w3.forward(tf.mul(silu(x1), x2));
    });
  }
}
