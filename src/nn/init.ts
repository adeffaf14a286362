// Seeded parameter initialisers matching the distributions of torch.nn.init (not its random streams).
// Values are drawn on the host from one Rng per model, in registration order, so a seed gives the same model on
// every backend.
import { tf, type Tensor } from '../backend/tf.js';
import { Rng } from '../util/rng.js';

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** N(0, std²) truncated to the *absolute* interval [a, b] by resampling (torch trunc_normal_ defaults a=-2, b=2). */
export function truncNormal(rng: Rng, shape: number[], std: number, a = -2, b = 2): Tensor {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    let v: number;
    do v = rng.normal(0, std);
    while (v < a || v > b);
    data[i] = v;
  }
  return tf.tensor(data, shape);
}

export function normal(rng: Rng, shape: number[], std: number): Tensor {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal(0, std);
  return tf.tensor(data, shape);
}

/** U(-bound, bound). */
export function uniform(rng: Rng, shape: number[], bound: number): Tensor {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-bound, bound);
  return tf.tensor(data, shape);
}

/**
 * PyTorch's default Linear / Conv2d init: kaiming_uniform(a=√5) for the weight, i.e. U(±1/√fan_in), and
 * U(±1/√fan_in) for the bias. `fanIn` = in_features (Linear) or in_channels·kh·kw (Conv2d).
 */
export function torchDefaultBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

export function constant(shape: number[], value: number): Tensor {
  return tf.fill(shape, value);
}

/**
 * 2-D sine-cosine position embedding [1, 1 + gh·gw, D] (MAE / MoCo v3): a quarter of the channels each for sin and cos
 * of the column and of the row, frequencies 1/10000^(k/(D/4)); the CLS position is zero. Used as the init of the
 * learned pos_embed for short runs on small images: every token knows where it is from the first step, where a
 * trunc_normal(0.02) init leaves position nearly invisible next to the patch embeddings.
 */
export function sincos2d(gh: number, gw: number, D: number): Tensor {
  if (D % 4) throw new Error(`sin-cos position embedding: the width ${D} must be a multiple of 4`);
  const q = D / 4;
  const v = new Float32Array((1 + gh * gw) * D);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      const row = (1 + i * gw + j) * D;
      for (let k = 0; k < q; k++) {
        const om = 1 / 10000 ** (k / q);
        v[row + k] = Math.sin(j * om);
        v[row + q + k] = Math.cos(j * om);
        v[row + 2 * q + k] = Math.sin(i * om);
        v[row + 3 * q + k] = Math.cos(i * om);
      }
    }
  }
  return tf.tensor(v, [1, 1 + gh * gw, D]);
}
