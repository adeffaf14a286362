// Composite TF.js ops used by the layers. Each is a small function with a fixed signature so a backend can later
// route it to a fused kernel without touching the layers.
import { tf, type Tensor } from '../backend/tf.js';
import { fusedAttention, fusedGelu, fusedLayerNorm } from '../backend/fused.js';

/** y = x · wᵀ + b for x [..., in], w [out, in] (PyTorch Linear layout), b [out]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  return tf.tidy(() => {
    const inF = w.shape[1]!;
    if (x.shape[x.rank - 1] !== inF) {
      throw new Error(`linear: input's last dimension is ${x.shape[x.rank - 1]}, weight [${w.shape}] expects ${inF}`);
    }
    const lead = x.shape.slice(0, -1);
    let y = tf.matMul(x.reshape([-1, inF]), w, false, true);
    if (b) y = tf.add(y, b);
    return y.reshape([...lead, w.shape[0]!]);
  });
}

/** LayerNorm over the last axis with biased variance, like torch.nn.LayerNorm. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  // One native kernel (and one for its gradient) on the `native` backend; null elsewhere.
  const fused = fusedLayerNorm(x, gamma, beta, eps);
  if (fused) return fused;
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

/** Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)) (torch.nn.GELU() default). */
export function gelu(x: Tensor): Tensor {
  const fused = fusedGelu(x);
  if (fused) return fused;
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** SiLU, x·sigmoid(x). */
export function silu(x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/**
 * softmax(q·kᵀ·scale)·v over the last two axes (q, k, v: [..., T, hd]).
 * With { returnProbs: true } also returns the attention probabilities [..., T, T].
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor;
export function scaledDotProductAttention(
  q: Tensor, k: Tensor, v: Tensor, scale: number, opts: { returnProbs: true },
): { out: Tensor; probs: Tensor };
export function scaledDotProductAttention(
  q: Tensor, k: Tensor, v: Tensor, scale: number, opts?: { returnProbs?: boolean },
): Tensor | { out: Tensor; probs: Tensor } {
  const fused = fusedAttention(q, k, v, scale, opts?.returnProbs ?? false);
  if (fused) return opts?.returnProbs ? { out: fused.out, probs: fused.probs! } : fused.out;
  return tf.tidy(() => {
    const probs = tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale));
    const out = tf.matMul(probs, v);
    return opts?.returnProbs ? { out, probs } : out;
  });
}

/** x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', axis, true), eps)));
}
