// Collapse monitors of DINO training, computed from the teacher's targets p (softmax((t−c)/τ), or Sinkhorn-Knopp):
//  - teacher_entropy: mean over images of H(p_i). Uniform collapse drives it to ln K (and the loss to ln K).
//  - kl_uniform: KL(mean_i p_i ‖ uniform) = ln K − H(p̄). One-prototype collapse drives it to ln K; healthy ≈ small.
import { tf, type Tensor } from '../backend/tf.js';

/** [entropy, kl] of target probabilities p [n, K] as a 2-vector tensor (one host read for both). */
export function targetStatsTensor(p: Tensor): Tensor {
  return tf.tidy(() => {
    const K = p.shape[1]!;
    const entropy = tf.mean(tf.neg(tf.sum(tf.mul(p, tf.log(tf.add(p, 1e-30))), -1)));
    const pbar = tf.mean(p, 0);
    const kl = tf.sum(tf.mul(pbar, tf.log(tf.add(tf.mul(pbar, K), 1e-30))));
    return tf.stack([entropy, kl]);
  });
}

/**
 * True when a value sits at ln K: the DINO loss or the teacher entropy of a uniform teacher, the collapse signature
 * of dinov3#199. (An entropy never exceeds ln K, so for it this reads: entropy > (1 − tol) · ln K.)
 */
export function atLogK(value: number, outDim: number, tol = 0.01): boolean {
  return Math.abs(value - Math.log(outDim)) < tol * Math.log(outDim);
}
