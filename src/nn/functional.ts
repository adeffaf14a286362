// Composite TF.js ops used by the layers. Each is a small function with a fixed signature so a backend can later
// route it to a fused kernel without touching the layers.
import { tf, type Tensor } from '../backend/tf.js';
import { fusedAttention, fusedGelu, fusedLayerNorm, fusedLinearGelu, fusedQkvAttention } from '../backend/fused.js';

/** y = x · wᵀ + b for x [..., in], w [out, in] (PyTorch Linear layout), b [out]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const inF = w.shape[1]!;
  if (x.shape[x.rank - 1] !== inF) {
    throw new Error(`linear: input's last dimension is ${x.shape[x.rank - 1]}, weight [${w.shape}] expects ${inF}`);
  }
  if (tf.engine().state.gradientDepth === 0) return tf.tidy(() => linearForward(x, w, b ?? null));
  return b ? linearWithBias(x, w, b) : linearNoBias(x, w);
}

/** One _FusedMatMul over the rows of x: the bias add rides on the matmul (a oneDNN post-op on `native`). */
function linearForward(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const y = tf.fused.matMul({ a: x.reshape([-1, w.shape[1]!]), b: w, transposeB: true, bias: b ?? undefined });
  return y.reshape([...x.shape.slice(0, -1), w.shape[0]!]);
}

// While a gradient is recorded, linear is one tape node that saves x and w only. Through tf.fused.matMul and
// reshapes, the tape would keep the output alive too (TF.js's Reshape gradient saves its input to learn its shape),
// which no Linear's gradient needs: in a ViT, the qkv outputs (14.5 MB a layer for ViT-S/16 at batch 8).
function linearGrads(dy: Tensor, x: Tensor, w: Tensor, withBias: boolean): Tensor[] {
  const [outF, inF] = w.shape as [number, number];
  const dy2 = dy.reshape([-1, outF]);
  const dx = tf.matMul(dy2, w).reshape(x.shape);
  const dw = tf.matMul(dy2, x.reshape([-1, inF]), true, false);
  return withBias ? [dx, dw, tf.sum(dy2, 0)] : [dx, dw];
}

const linearWithBias = tf.customGrad(((x: Tensor, w: Tensor, b: Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return { value: linearForward(x, w, b), gradFunc: (dy: Tensor, [xs, ws]: Tensor[]) => linearGrads(dy, xs!, ws!, true) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: Tensor, w: Tensor, b: Tensor) => Tensor;

const linearNoBias = tf.customGrad(((x: Tensor, w: Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return { value: linearForward(x, w, null), gradFunc: (dy: Tensor, [xs, ws]: Tensor[]) => linearGrads(dy, xs!, ws!, false) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: Tensor, w: Tensor) => Tensor;

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

/** gelu(linear(x, w, b)): one matmul with a GELU post-op when inferring on `native` (saves a pass over the hidden layer). */
export function linearGelu(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  return fusedLinearGelu(x, w, b ?? null) ?? tf.tidy(() => gelu(linear(x, w, b)));
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

/**
 * Multi-head self-attention from a fused qkv projection [B, T, 3D]: rows [q; k; v], each split into `numHeads` heads
 * of D/numHeads (the official reshape to (B, T, 3, H, hd)); returns the heads' outputs side by side, [B, T, D].
 * With { returnProbs: true } also returns the attention probabilities [B, H, T, T].
 */
export function multiHeadAttention(qkv: Tensor, numHeads: number, scale: number): Tensor;
export function multiHeadAttention(
  qkv: Tensor, numHeads: number, scale: number, opts: { returnProbs: true },
): { out: Tensor; probs: Tensor };
export function multiHeadAttention(
  qkv: Tensor, numHeads: number, scale: number, opts?: { returnProbs?: boolean },
): Tensor | { out: Tensor; probs: Tensor } {
  const [B, T, D3] = qkv.shape as [number, number, number];
  if (qkv.rank !== 3 || D3 % (3 * numHeads) !== 0) {
    throw new Error(`multiHeadAttention: qkv [${qkv.shape}] must be [B, T, 3·D] with D divisible by ${numHeads} heads`);
  }
  const withProbs = opts?.returnProbs ?? false;
  // One native kernel each way on `native` (no transposes, unstack or pack around it); null elsewhere.
  const fused = fusedQkvAttention(qkv, numHeads, scale, withProbs);
  if (fused) return withProbs ? { out: fused.out, probs: fused.probs! } : fused.out;
  return tf.tidy(() => {
    const D = D3 / 3;
    const heads = qkv.reshape([B, T, 3, numHeads, D / numHeads]).transpose([2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(heads, 0) as [Tensor, Tensor, Tensor];
    const merge = (o: Tensor) => o.transpose([0, 2, 1, 3]).reshape([B, T, D]);
    if (!withProbs) return merge(scaledDotProductAttention(q, k, v, scale));
    const { out, probs } = scaledDotProductAttention(q, k, v, scale, { returnProbs: true });
    return { out: merge(out), probs };
  });
}

/** x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', axis, true), eps)));
}

/**
 * tf.split along `axis` into `sizes` pieces (a count or the pieces' sizes), differentiable with a single piece too:
 * TF.js's SplitV gradient fails for one output ("Pass at least one tensor to concat"), so one piece is `x` itself.
 */
export function split(x: Tensor, sizes: number | number[], axis = 0): Tensor[] {
  const pieces = typeof sizes === 'number' ? sizes : sizes.length;
  return pieces === 1 ? [x] : tf.split(x, sizes, axis);
}
