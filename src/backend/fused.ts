// Entry points for the fused native kernels (LayerNorm, GELU, attention). Each returns null unless the active
// backend is `native`, so callers keep their composite TF.js path for every other backend.
import { tf, type Tensor } from './tf.js';
import { FUSED } from './native/fused_kernels.js';

const onNative = () => tf.getBackend() === 'native';

function run(name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown>): Tensor[] {
  return tf.engine().runKernel(name, inputs as never, attrs as never) as unknown as Tensor[];
}

/**
 * Runs kernel `name`, whose outputs after the first only feed its gradient, as one tape node with one output: the
 * extra outputs are saved for `backward` (dy, extras, inputs) → one gradient per input, in `inputs` order. The inputs
 * are saved too when `backward` reads them (`keepInputs`): the caller's tidy may have disposed them by then.
 * Recorded as a multi-output kernel instead, TF.js would allocate a zero gradient for every extra output on each
 * backward pass: for a ViT-S/16 batch-8 attention layer, 22 MB of zeros (about 5 ms a layer with the garbage
 * collection they cause).
 */
function runSavingExtras(name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown>, keepInputs: boolean,
  backward: (dy: Tensor, extras: Tensor[], inputs: Tensor[]) => Tensor[]): Tensor {
  if (tf.engine().state.gradientDepth === 0) {
    const [value, ...extras] = run(name, inputs, attrs);
    tf.dispose(extras);
    return value!;
  }
  const names = Object.keys(inputs);
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const given = args as Tensor[];
    const [value, ...extras] = run(name, Object.fromEntries(names.map((n, i) => [n, given[i]!])), attrs);
    save([...extras, ...(keepInputs ? given : [])]);
    return {
      value: value!,
      gradFunc: (dy: Tensor, saved: Tensor[]) => backward(dy, saved.slice(0, extras.length), saved.slice(extras.length)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (...ts: Tensor[]) => Tensor)(...names.map((n) => inputs[n]!));
}

/** LayerNorm over the last axis (biased variance) with gamma/beta of that size, or null. */
export function fusedLayerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor | null {
  const C = x.shape[x.rank - 1];
  if (!onNative() || x.dtype !== 'float32' || gamma.size !== C || beta.size !== C || gamma.rank !== 1 || beta.rank !== 1) return null;
  const [y, mean, rstd] = run(FUSED.layerNorm, { x, gamma, beta }, { eps });
  // The statistics are saved for the gradient by the engine (as its own references); the caller only wants y.
  mean!.dispose();
  rstd!.dispose();
  return y!;
}

/**
 * gelu(x·wᵀ + b) as one matmul with a GELU post-op, or null. Inference only: while a gradient is being recorded the
 * caller keeps linear + GELU, whose gradient needs the pre-activation that the fused kernel never materialises.
 */
export function fusedLinearGelu(x: Tensor, w: Tensor, b: Tensor | null): Tensor | null {
  const inF = w.shape[1]!;
  if (!onNative() || tf.engine().state.gradientDepth > 0 || x.dtype !== 'float32' || w.rank !== 2 || x.shape[x.rank - 1] !== inF) {
    return null;
  }
  return tf.tidy(() => {
    const inputs = { a: x.reshape([-1, inF]), b: w, ...(b ? { bias: b } : {}) };
    const y = tf.engine().runKernel('_FusedMatMul', inputs as never,
      { transposeA: false, transposeB: true, activation: 'gelu' } as never) as unknown as Tensor;
    return y.reshape([...x.shape.slice(0, -1), w.shape[0]!]);
  });
}

/** Exact (erf) GELU, or null. */
export function fusedGelu(x: Tensor): Tensor | null {
  if (!onNative() || x.dtype !== 'float32') return null;
  return tf.engine().runKernel(FUSED.gelu, { x } as never, {}) as unknown as Tensor;
}

/** softmax(q·kᵀ·scale)·v over q [..., T, d], k [..., S, d], v [..., S, dv] with equal batch dims, or null. */
export function fusedAttention(q: Tensor, k: Tensor, v: Tensor, scale: number, withProbs: boolean):
  { out: Tensor; probs: Tensor | null } | null {
  const r = q.rank;
  const sameBatch = k.rank === r && v.rank === r && q.shape.slice(0, -2).every((d, i) => k.shape[i] === d && v.shape[i] === d);
  if (!onNative() || r < 2 || !sameBatch || q.shape[r - 1] !== k.shape[r - 1] || k.shape[r - 2] !== v.shape[r - 2]) return null;
  if (q.dtype !== 'float32' || k.dtype !== 'float32' || v.dtype !== 'float32') return null;
  if (!withProbs) {
    const out = runSavingExtras(FUSED.attention, { q, k, v }, { scale, probsGrad: false }, true, (dout, [probs], [qs, ks, vs]) =>
      run(FUSED.attentionGrad, { q: qs!, k: ks!, v: vs!, probs: probs!, dout }, { scale }));
    return { out, probs: null };
  }
  const [out, probs] = run(FUSED.attention, { q, k, v }, { scale, probsGrad: true });
  return { out: out!, probs: probs! };
}

/**
 * Multi-head attention straight from a fused qkv projection [B, T, 3D] (rows [q; k; v], each split into `numHeads`
 * heads) to the heads' outputs side by side, [B, T, D]; or null.
 */
export function fusedQkvAttention(qkv: Tensor, numHeads: number, scale: number, withProbs: boolean):
  { out: Tensor; probs: Tensor | null } | null {
  if (!onNative() || qkv.dtype !== 'float32' || qkv.rank !== 3 || qkv.shape[2]! % (3 * numHeads) !== 0) return null;
  if (tf.engine().state.gradientDepth === 0) {
    const [out, probs] = run(FUSED.qkvAttentionInference, { qkv }, { numHeads, scale, withProbs });
    return { out: out!, probs: probs ?? null };
  }
  if (!withProbs) {
    const out = runSavingExtras(FUSED.qkvAttention, { qkv }, { numHeads, scale, probsGrad: false }, false, (dout, [probs, heads]) =>
      [run(FUSED.qkvAttentionGrad, { heads: heads!, probs: probs!, dout }, { scale }) as unknown as Tensor]);
    return { out, probs: null };
  }
  const [out, probs, heads] = run(FUSED.qkvAttention, { qkv }, { numHeads, scale, probsGrad: true });
  heads!.dispose(); // kept by the engine for the gradient
  return { out: out!, probs: probs! };
}
