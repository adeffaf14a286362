// Fused kernels with their own gradients, registered for the `native` backend only:
// LayerNorm, GELU (erf) and attention (softmax(q·kᵀ·scale)·v). Each replaces 5-30 TF.js ops per direction.
import { tf } from '../tf.js';
import { BINARY, type NativeAddon } from './addon.js';
import { allocF32, cacheMask, recycle } from './buffer_pool.js';
import { mustF32, output, sizeOf, type NativeKernel } from './kernel_util.js';
import { matmulPrecision } from '../select.js';
import type { Tensor } from '../tf.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';

export const FUSED = {
  layerNorm: 'DinotsLayerNorm',
  layerNormGrad: 'DinotsLayerNormGrad',
  gelu: 'DinotsGelu',
  geluGrad: 'DinotsGeluGrad',
  attention: 'DinotsAttention',
  attentionGrad: 'DinotsAttentionGrad',
  qkvAttention: 'DinotsQkvAttention',
  qkvAttentionGrad: 'DinotsQkvAttentionGrad',
  qkvAttentionInference: 'DinotsQkvAttentionInference',
} as const;

/** {x [..., C], gamma [C], beta [C]}, {eps} → [y, mean [rows], rstd [rows]] */
function layerNorm(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
    const C = x!.shape[x!.shape.length - 1]!, rows = sizeOf(x!.shape) / C;
    const y = allocF32(rows * C), mean = allocF32(rows), rstd = allocF32(rows);
    addon.layerNorm(mustF32(backend, x!, 'layerNorm x'), mustF32(backend, gamma!, 'layerNorm gamma'),
      mustF32(backend, beta!, 'layerNorm beta'), rows, C, attrs.eps as number, y, mean, rstd);
    return [output(backend, x!.shape, y), output(backend, [rows], mean), output(backend, [rows], rstd)];
  };
}

/** {x, gamma, mean, rstd, dy} → [dx, dgamma, dbeta] */
function layerNormGrad(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend }) => {
    const { x, gamma, mean, rstd, dy } = inputs as Record<string, TensorInfo>;
    const C = x!.shape[x!.shape.length - 1]!, rows = sizeOf(x!.shape) / C;
    const dx = allocF32(rows * C), dg = allocF32(C), db = allocF32(C);
    addon.layerNormGrad(mustF32(backend, x!, 'x'), mustF32(backend, gamma!, 'gamma'), mustF32(backend, mean!, 'mean'),
      mustF32(backend, rstd!, 'rstd'), mustF32(backend, dy!, 'dy'), rows, C, dx, dg, db);
    return [output(backend, x!.shape, dx), output(backend, [C], dg), output(backend, [C], db)];
  };
}

function gelu(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend }) => {
    const x = inputs.x!;
    const y = allocF32(sizeOf(x.shape));
    addon.gelu(mustF32(backend, x, 'gelu x'), y);
    return output(backend, x.shape, y);
  };
}

function geluGrad(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend }) => {
    const { x, dy } = inputs as Record<string, TensorInfo>;
    const dx = allocF32(sizeOf(x!.shape));
    addon.geluGrad(mustF32(backend, x!, 'x'), mustF32(backend, dy!, 'dy'), dx);
    return output(backend, x!.shape, dx);
  };
}

/** Batch, query length, key length and head dims of q [..., T, d], k [..., S, d], v [..., S, dv]. */
function attnDims(q: TensorInfo, v: TensorInfo) {
  const r = q.shape.length;
  return { B: sizeOf(q.shape.slice(0, -2)), T: q.shape[r - 2]!, S: v.shape[r - 2]!, d: q.shape[r - 1]!, dv: v.shape[r - 1]! };
}

type F32 = Float32Array;
interface AttnShape { B: number; T: number; S: number; d: number; dv: number }

/** probs = softmax(scale·q·kᵀ) over B independent [T, d] × [S, d] problems. */
function attentionProbs(addon: NativeAddon, q: F32, k: F32, probs: F32, { B, T, S, d }: AttnShape, scale: number) {
  addon.matmul(q, k, probs, B, B, T, d, S, false, true, null, 0, 0, cacheMask(q, k));
  addon.softmax(probs, B * T, S, probs, scale);
}

/** probs = softmax(scale·q·kᵀ), out = probs·v over B independent [T, d] × [S, d] × [S, dv] problems. */
function attentionCore(addon: NativeAddon, q: F32, k: F32, v: F32, probs: F32, out: F32, shape: AttnShape, scale: number) {
  const { B, T, S, dv } = shape;
  attentionProbs(addon, q, k, probs, shape, scale);
  addon.matmul(probs, v, out, B, B, T, S, dv, false, false, null, 0, 0, cacheMask(probs, v));
}

type AttnSaved = { q: F32; k: F32; v: F32; probs: F32; dout: F32; dprobs: F32 | null };

/** dS, the gradient of the scaled scores q·kᵀ (scale included), into a new [B, T, S] buffer: from dP = dO·Vᵀ (+ dprobs). */
function scoresGrad(addon: NativeAddon, t: AttnSaved, { B, T, S, dv }: AttnShape, scale: number): F32 {
  const dP = allocF32(B * T * S);
  addon.matmul(t.dout, t.v, dP, B, B, T, dv, S, false, true, null, 0, 0, cacheMask(t.dout, t.v)); // dP = dO·Vᵀ
  if (t.dprobs) {
    const shape = [B * T * S];
    addon.binary(BINARY.Add, dP, shape, t.dprobs, shape, dP, shape);
  }
  addon.softmaxGrad(t.probs, dP, B * T, S, dP, scale);
  return dP;
}

/** The backward of attentionCore into dq, dk, dv; `dprobs` is an extra upstream gradient on the probabilities. */
function attentionGradCore(addon: NativeAddon, t: AttnSaved, g: { dq: F32; dk: F32; dv: F32 }, shape: AttnShape, scale: number) {
  const { B, T, S, d, dv } = shape;
  addon.matmul(t.probs, t.dout, g.dv, B, B, S, T, dv, true, false, null, 0, 0, cacheMask(t.probs, t.dout)); // dV = Pᵀ·dO
  const dS = scoresGrad(addon, t, shape, scale);
  addon.matmul(dS, t.k, g.dq, B, B, T, S, d, false, false, null, 0, 0, cacheMask(dS, t.k)); // dQ = dS·K
  addon.matmul(dS, t.q, g.dk, B, B, S, T, d, true, false, null, 0, 0, cacheMask(dS, t.q)); // dK = dSᵀ·Q
  recycle(dS);
}

/** {q, k, v}, {scale, probsGrad} → [out [..., T, dv], probs [..., T, S]] */
function attention(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const { q, k, v } = inputs as Record<string, TensorInfo>;
    const dims = attnDims(q!, v!);
    const { B, T, S, dv } = dims;
    const probs = allocF32(B * T * S), out = allocF32(B * T * dv);
    const qv = mustF32(backend, q!, 'q'), kv = mustF32(backend, k!, 'k'), vv = mustF32(backend, v!, 'v');
    attentionCore(addon, qv, kv, vv, probs, out, dims, attrs.scale as number);
    const lead = q!.shape.slice(0, -2);
    return [output(backend, [...lead, T, dv], out), output(backend, [...lead, T, S], probs)];
  };
}

/** {q, k, v, probs, dout, dprobs}, {scale} → [dq, dk, dv] */
function attentionGrad(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const { q, k, v, probs, dout, dprobs } = inputs as Record<string, TensorInfo>;
    const dims = attnDims(q!, v!);
    const { B, T, S, d, dv } = dims;
    const dq = allocF32(B * T * d), dk = allocF32(B * S * d), dV = allocF32(B * S * dv);
    attentionGradCore(
      addon,
      {
        q: mustF32(backend, q!, 'q'), k: mustF32(backend, k!, 'k'), v: mustF32(backend, v!, 'v'),
        probs: mustF32(backend, probs!, 'probs'), dout: mustF32(backend, dout!, 'dout'),
        dprobs: dprobs ? mustF32(backend, dprobs, 'dprobs') : null,
      },
      { dq, dk, dv: dV },
      dims,
      attrs.scale as number,
    );
    return [output(backend, q!.shape, dq), output(backend, k!.shape, dk), output(backend, v!.shape, dV)];
  };
}

/** Dims of a fused qkv tensor [B, T, 3·D] split into `heads` heads of hd = D / heads. */
function qkvDims(qkv: TensorInfo, heads: number) {
  const [B, T, D3] = qkv.shape as [number, number, number];
  const D = D3 / 3, hd = D / heads;
  return { B, T, D, H: heads, hd, n: B * T * D };
}

/**
 * out [B, T, D] of the attention over qkv (probs and the q, k, v head blocks too, when given). In float32 the
 * head-group kernel computes the heads in cache while it copies them (attentionHeads); in bf16 one transpose splits
 * qkv into head blocks, the batched bf16 products run, and one more transpose puts the heads back side by side.
 */
function qkvForward(addon: NativeAddon, qkv: F32, { B, T, H, hd, n }: ReturnType<typeof qkvDims>, scale: number, out: F32,
  probs: F32 | null, heads: F32 | null): void {
  if (matmulPrecision() === 'f32') {
    addon.attentionHeads(qkv, out, [B, T, H, hd], scale, probs, heads ?? undefined);
    return;
  }
  const p = probs ?? allocF32(B * H * T * T), hb = heads ?? allocF32(3 * n), oh = allocF32(n);
  addon.transpose(qkv, [B, T, 3, H, hd], [2, 0, 3, 1, 4], hb);
  const shape = { B: B * H, T, S: T, d: hd, dv: hd };
  attentionCore(addon, hb.subarray(0, n), hb.subarray(n, 2 * n), hb.subarray(2 * n), p, oh, shape, scale);
  addon.transpose(oh, [B, H, T, hd], [0, 2, 1, 3], out);
  recycle(oh);
  if (!heads) recycle(hb);
  if (!probs) recycle(p);
}

/**
 * {qkv [B, T, 3D]}, {numHeads, scale, probsGrad} → [out [B, T, D], probs [B, H, T, T], heads [3, B, H, T, hd]].
 * The heads are the contiguous q, k, v head blocks, saved for the gradient with the probabilities. The composite's
 * reshape/transpose/unstack chain and its Pack in the backward go.
 */
function qkvAttention(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const qkv = inputs.qkv!;
    const dims = qkvDims(qkv, attrs.numHeads as number);
    const { B, T, D, H, hd, n } = dims;
    const heads = allocF32(3 * n), probs = allocF32(B * H * T * T), out = allocF32(n);
    qkvForward(addon, mustF32(backend, qkv, 'qkv'), dims, attrs.scale as number, out, probs, heads);
    return [output(backend, [B, T, D], out), output(backend, [B, H, T, T], probs), output(backend, [3, B, H, T, hd], heads)];
  };
}

/**
 * {qkv [B, T, 3D]}, {numHeads, scale, withProbs} → [out [B, T, D]] (and probs [B, H, T, T] when withProbs): the
 * forward pass alone, for when no gradient is recorded: no head blocks are kept, and the probabilities only when
 * asked for.
 */
function qkvAttentionInference(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const qkv = inputs.qkv!;
    const dims = qkvDims(qkv, attrs.numHeads as number);
    const { B, T, D, H } = dims;
    const out = allocF32(dims.n), probs = attrs.withProbs ? allocF32(B * H * T * T) : null;
    qkvForward(addon, mustF32(backend, qkv, 'qkv'), dims, attrs.scale as number, out, probs, null);
    const result = output(backend, [B, T, D], out);
    return probs ? [result, output(backend, [B, H, T, T], probs)] : [result];
  };
}

/** {heads [3, B, H, T, hd], probs, dout [B, T, D], dprobs?}, {scale} → dqkv [B, T, 3D] */
function qkvAttentionGrad(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const { heads, probs, dout, dprobs } = inputs as Record<string, TensorInfo>;
    const [, B, H, T, hd] = heads!.shape as [number, number, number, number, number];
    const n = B * H * T * hd;
    const hv = mustF32(backend, heads!, 'heads'), pv = mustF32(backend, probs!, 'probs'), dov = mustF32(backend, dout!, 'dout');
    const dpv = dprobs ? mustF32(backend, dprobs, 'dprobs') : null;
    const dqkv = allocF32(3 * n), scale = attrs.scale as number;
    if (matmulPrecision() === 'f32') {
      // Groups of heads in cache, dq, dk, dv written straight into their columns of dqkv [B, T, 3, H, hd].
      addon.attentionHeadsGrad(hv, pv, dov, dqkv, [B, T, H, hd], scale, dpv);
    } else {
      const dO = allocF32(n), dh = allocF32(3 * n);
      addon.transpose(dov, [B, T, H, hd], [0, 2, 1, 3], dO);
      const t = { q: hv.subarray(0, n), k: hv.subarray(n, 2 * n), v: hv.subarray(2 * n), probs: pv, dout: dO, dprobs: dpv };
      const shape = { B: B * H, T, S: T, d: hd, dv: hd };
      attentionGradCore(addon, t, { dq: dh.subarray(0, n), dk: dh.subarray(n, 2 * n), dv: dh.subarray(2 * n) }, shape, scale);
      addon.transpose(dh, [3, B, H, T, hd], [1, 3, 0, 2, 4], dqkv);
      recycle(dh);
      recycle(dO);
    }
    return output(backend, [B, T, 3 * H * hd], dqkv);
  };
}

export function fusedKernels(addon: NativeAddon): Record<string, NativeKernel> {
  return {
    [FUSED.layerNorm]: layerNorm(addon),
    [FUSED.layerNormGrad]: layerNormGrad(addon),
    [FUSED.gelu]: gelu(addon),
    [FUSED.geluGrad]: geluGrad(addon),
    [FUSED.attention]: attention(addon),
    [FUSED.attentionGrad]: attentionGrad(addon),
    [FUSED.qkvAttention]: qkvAttention(addon),
    [FUSED.qkvAttentionGrad]: qkvAttentionGrad(addon),
    [FUSED.qkvAttentionInference]: qkvAttentionInference(addon),
  };
}

const run = (name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown> = {}) =>
  tf.engine().runKernel(name, inputs as never, attrs as never) as Tensor | Tensor[];

/** Gradients of the fused kernels (global registry, keyed by kernel name; the kernels exist only on `native`). */
export function registerFusedGradients(): void {
  tf.registerGradient({
    kernelName: FUSED.layerNorm,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [x, gamma, mean, rstd] = saved as Tensor[];
      const dy = (Array.isArray(dys) ? dys[0] : dys) as Tensor;
      const [dx, dgamma, dbeta] = run(FUSED.layerNormGrad, { x: x!, gamma: gamma!, mean: mean!, rstd: rstd!, dy }) as Tensor[];
      return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
    },
  });
  tf.registerGradient({
    kernelName: FUSED.gelu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => run(FUSED.geluGrad, { x: saved[0]!, dy: dy as Tensor }) as Tensor }),
  });
  tf.registerGradient({
    kernelName: FUSED.attention,
    inputsToSave: ['q', 'k', 'v'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const [q, k, v, probs] = saved as Tensor[];
      const [dout, dprobs] = dys as Tensor[];
      // The probabilities' gradient is zeros unless the caller asked for them (attrs.probsGrad), so skip adding it.
      const inputs: Record<string, Tensor> = { q: q!, k: k!, v: v!, probs: probs!, dout: dout! };
      if ((attrs as Record<string, unknown>).probsGrad) inputs.dprobs = dprobs!;
      const [dq, dk, dv] = run(FUSED.attentionGrad, inputs, attrs as Record<string, unknown>) as Tensor[];
      return { q: () => dq!, k: () => dk!, v: () => dv! };
    },
  });
  tf.registerGradient({
    kernelName: FUSED.qkvAttention,
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [probs, heads] = saved as Tensor[];
      const [dout, dprobs] = dys as Tensor[];
      const inputs: Record<string, Tensor> = { heads: heads!, probs: probs!, dout: dout! };
      if ((attrs as Record<string, unknown>).probsGrad) inputs.dprobs = dprobs!;
      return { qkv: () => run(FUSED.qkvAttentionGrad, inputs, attrs as Record<string, unknown>) as Tensor };
    },
  });
}
