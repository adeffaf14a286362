// KoLeo regulariser of DINOv2 (dinov2/loss/koleo_loss.py): spreads the batch's features by pushing every point away
// from its nearest neighbour.
//
//   const { loss, nnIndices } = koleoLoss(x);   // x [B, D] (student backbone CLS of one global crop), differentiable
//
//   1. x <- x / max(||x||, eps)
//   2. nearest neighbour of row i = argmax_j x_i . x_j with the diagonal set to -1 (first index on ties)
//   3. d_i = ||x_i - x_nn(i) + eps||_2   (torch PairwiseDistance adds eps to the difference)
//   4. loss = -mean(log(d + eps))
// The neighbour search carries no gradient (as in torch); the gradient flows through both x_i and x_nn(i).
// The indices are read back to the host once per call (B int32 values), which keeps them off the gradient tape.
// DINOv2 applies it per global crop and sums the two terms, with weight 0.1.
import { tf, type Tensor } from '../backend/tf.js';

export interface KoLeoResult {
  loss: tf.Scalar;
  /** int32 [B]: the nearest neighbour of each row. */
  nnIndices: tf.Tensor1D;
}

export function koleoLoss(x: Tensor, eps = 1e-8): KoLeoResult {
  if (x.rank !== 2 || x.shape[0]! < 2) throw new Error(`koleoLoss: x must be [B, D] with B >= 2, got [${x.shape}]`);
  const n = x.shape[0]!;
  return tf.tidy(() => {
    const xn = tf.div(x, tf.maximum(tf.norm(x, 2, -1, true), eps));
    const dots = tf.matMul(xn, xn, false, true);
    const diagonalToMinusOne = tf.where(tf.eye(n).cast('bool'), tf.fill([n, n], -1), dots);
    // Read back and re-create the indices so they are off the gradient tape (TF.js cannot differentiate gather
    // with respect to indices): one small synchronous download of B integers.
    const nnIndices = tf.tensor1d(tf.argMax(diagonalToMinusOne, 1).dataSync() as Int32Array, 'int32');
    // x[nn] as a one-hot matmul rather than gather: gather's gradient needs UnsortedSegmentSum, missing on wasm.
    const neighbours = tf.matMul(tf.oneHot(nnIndices, n, 1, 0, 'float32'), xn);
    const diff = tf.add(tf.sub(xn, neighbours), eps);
    const distances = tf.sqrt(tf.sum(tf.square(diff), -1));
    const loss = tf.neg(tf.mean(tf.log(tf.add(distances, eps)))) as tf.Scalar;
    return { loss, nnIndices };
  });
}
