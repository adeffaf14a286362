// Sinkhorn-Knopp teacher normalisation of DINOv2 (dino_clstoken_loss.py / ibot_patch_loss.py sinkhorn_knopp_teacher),
// for a single process (world size 1).
//
// Input teacherOutput [B, K] (float32 logits, no gradient); returns [B, K] assignments whose rows sum to 1 and whose
// columns (prototypes) each get about B/K mass. Exactly the official float32 arithmetic, in the official order:
//   Q = exp(t / temp)            NO max-subtraction: logits above ~88*temp overflow to Infinity and the result turns
//                                to NaN, exactly as the official code does (do not "fix" this here; it keeps parity).
//   Q /= sum(Q)
//   repeat n: Q /= per-prototype sums; Q /= K; Q /= per-sample sums; Q /= B
//   Q *= B
// `nSamples` is the official B: the number of rows for the CLS loss, the (all-reduced) masked-patch count for iBOT.
import { tf, type Tensor } from '../backend/tf.js';

export function sinkhornKnopp(teacherOutput: Tensor, teacherTemp: number, nIterations = 3, nSamples?: number): Tensor {
  if (teacherOutput.rank !== 2) throw new Error(`sinkhornKnopp: teacherOutput must be [B, K], got [${teacherOutput.shape}]`);
  const [rows, K] = teacherOutput.shape as [number, number];
  const B = nSamples ?? rows;
  return tf.tidy(() => {
    // We keep the [B, K] layout (the official code transposes to K x B): prototype sums are over axis 0 here.
    let Q = tf.exp(tf.div(teacherOutput.toFloat(), teacherTemp));
    Q = tf.div(Q, tf.sum(Q));
    for (let it = 0; it < nIterations; it++) {
      Q = tf.div(Q, tf.sum(Q, 0, true));
      Q = tf.div(Q, K);
      Q = tf.div(Q, tf.sum(Q, 1, true));
      Q = tf.div(Q, B);
    }
    return tf.mul(Q, B);
  });
}
