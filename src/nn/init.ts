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
