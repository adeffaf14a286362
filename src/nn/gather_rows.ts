// Row gather x[indices] with a gradient that every backend can run. TF.js differentiates gather through
// UnsortedSegmentSum, which the wasm backend lacks; this backward scatters the incoming gradient rows back with
// scatterND, which sums rows of repeated indices (the gradient of a gather), on cpu, wasm and native alike.
import { tf, type Tensor } from '../backend/tf.js';

/** x [R, ...] → x[indices] [M, ...]; `indices` int32 [M] (host values, no gradient). */
export function gatherRows(x: Tensor, indices: Tensor): Tensor {
  const rows = x.shape[0]!;
  const idx2d = indices.reshape([-1, 1]);
  const op = tf.customGrad(((input: Tensor, save: tf.GradSaveFunc) => {
    save([idx2d]);
    return {
      value: tf.gather(input, indices),
      gradFunc: (dy: Tensor, saved: Tensor[]) => tf.scatterND(saved[0]!, dy, [rows, ...x.shape.slice(1)]),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const out = (op as unknown as (t: Tensor) => Tensor)(x);
  idx2d.dispose();
  return out;
}
