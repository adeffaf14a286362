// Native kernels for matmul, elementwise (binary with broadcasting, unary) and reductions.
import { tf } from '../tf.js';
import { ACTIVATION, BINARY, REDUCE, UNARY, type NativeAddon } from './addon.js';
import { allocF32, cacheMask, recycle } from './buffer_pool.js';
import { f32, output, sizeOf, type Backend, type NativeKernel } from './kernel_util.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/** a·b with optional transposes, broadcasting a batch of 1; null when the shapes need the cpu kernel. */
export function nativeMatMul(addon: NativeAddon, backend: Backend, a: TensorInfo, b: TensorInfo, transA: boolean,
  transB: boolean, bias: Float32Array | null = null, act = 0, alpha = 0): TensorInfo | null {
  const av = f32(backend, a), bv = f32(backend, b);
  const ra = a.shape.length, rb = b.shape.length;
  if (!av || !bv || ra < 2 || rb < 2) return null;
  const M = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (K !== Kb) return null; // the cpu kernel throws the proper error
  let batchShape: number[];
  try {
    batchShape = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return null;
  }
  const bA = sizeOf(a.shape.slice(0, -2)), bB = sizeOf(b.shape.slice(0, -2)), batch = sizeOf(batchShape);
  if ((bA !== batch && bA !== 1) || (bB !== batch && bB !== 1)) return null;
  const out = allocF32(batch * M * N);
  addon.matmul(av, bv, out, bA, bB, M, K, N, transA, transB, bias, act, alpha, cacheMask(av, bv));
  return output(backend, [...batchShape, M, N], out);
}

export function matMulKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) =>
    nativeMatMul(addon, backend, inputs.a!, inputs.b!, attrs.transposeA as boolean, attrs.transposeB as boolean);
}

/** _FusedMatMul (tf.fused.matMul): bias of N values and the activations oneDNN has as post-ops. */
export function fusedMatMulKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs;
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    if (preluActivationWeights || !(activation in ACTIVATION)) return null;
    const N = (attrs.transposeB ? b!.shape[b!.shape.length - 2] : b!.shape[b!.shape.length - 1])!;
    let biasValues: Float32Array | null = null;
    if (bias) {
      biasValues = f32(backend, bias);
      if (!biasValues || biasValues.length !== N || bias.shape[bias.shape.length - 1] !== N) return null;
    }
    return nativeMatMul(addon, backend, a!, b!, attrs.transposeA as boolean, attrs.transposeB as boolean, biasValues,
      ACTIVATION[activation as keyof typeof ACTIVATION], (attrs.leakyreluAlpha as number | undefined) ?? 0.2);
  };
}

export function binaryKernel(addon: NativeAddon, op: number): NativeKernel {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a), bv = f32(backend, b);
    if (!av || !bv) return null;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
    const out = allocF32(sizeOf(outShape));
    addon.binary(op, av, a!.shape, bv, b!.shape, out, outShape);
    return output(backend, outShape, out);
  };
}

/** AddN (gradient accumulation): a running sum, each add one native pass. */
export function addNKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend }) => {
    const ts = Object.values(inputs) as TensorInfo[];
    const vs = ts.map((t) => f32(backend, t));
    if (ts.length < 2 || vs.some((v) => !v)) return null;
    const shape = ts[0]!.shape;
    const out = allocF32(sizeOf(shape));
    addon.binary(BINARY.Add, vs[0]!, shape, vs[1]!, shape, out, shape);
    for (let i = 2; i < vs.length; i++) addon.binary(BINARY.Add, out, shape, vs[i]!, shape, out, shape);
    return output(backend, shape, out);
  };
}

export function unaryKernel(addon: NativeAddon, op: number): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const out = allocF32(xv.length);
    addon.unary(op, xv, out, op === UNARY.Step ? ((attrs.alpha as number | undefined) ?? 0) : 0);
    return output(backend, x.shape, out);
  };
}

/**
 * Sum/Mean/Max/Min/Prod over any axes. The reduced axes are mapped onto a [outer, R, inner] view when they are
 * contiguous (ignoring size-1 dims); otherwise they are first transposed to the end.
 */
export function reduceKernel(addon: NativeAddon, op: number, axisAttr: 'axis' | 'reductionIndices'): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv || xv.length === 0) return null;
    const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
    if (axes.length === 0) return null;
    const reduced = x.shape.map((_, i) => axes.includes(i));
    const keepShape = x.shape.map((d, i) => (reduced[i] ? 1 : d));
    const outShape = attrs.keepDims ? keepShape : x.shape.filter((_, i) => !reduced[i]);
    // Only dims larger than 1 decide the layout.
    const big = x.shape.map((d, i) => i).filter((i) => x.shape[i]! > 1);
    const flags = big.map((i) => reduced[i]!);
    const first = flags.indexOf(true), last = flags.lastIndexOf(true);
    const out = allocF32(sizeOf(outShape));
    if (first === -1) {
      // Every reduced dim has size 1: max/min/sum/mean/prod of one element is the element.
      out.set(xv);
      return output(backend, outShape, out);
    }
    if (flags.slice(first, last + 1).every((f) => f)) {
      const dims = big.map((i) => x.shape[i]!);
      const outer = sizeOf(dims.slice(0, first)), R = sizeOf(dims.slice(first, last + 1)), inner = sizeOf(dims.slice(last + 1));
      addon.reduce(op, xv, outer, R, inner, out);
    } else {
      const perm = [...x.shape.keys()].filter((i) => !reduced[i]).concat([...x.shape.keys()].filter((i) => reduced[i]));
      const t = allocF32(xv.length);
      addon.transpose(xv, x.shape, perm, t);
      const R = sizeOf(axes.map((a) => x.shape[a]!));
      addon.reduce(op, t, xv.length / R, R, 1, out);
      recycle(t);
    }
    return output(backend, outShape, out);
  };
}

/** Softmax over the last axis (the only axis tf.softmax supports). */
export function softmaxKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.logits!;
    const xv = f32(backend, x);
    const r = x.shape.length;
    const dim = attrs.dim as number;
    if (!xv || r === 0 || (dim !== -1 && dim !== r - 1)) return null;
    const cols = x.shape[r - 1]!;
    const out = allocF32(xv.length);
    if (xv.length > 0) addon.softmax(xv, xv.length / cols, cols, out, 1);
    return output(backend, x.shape, out);
  };
}

/** Cast to float32 from bool/int32 writes a real Float32Array (cpu shares the source buffer, which no native kernel can use). */
export function castKernel(): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    if (attrs.dtype !== 'float32' || (x.dtype !== 'bool' && x.dtype !== 'int32')) return null;
    const v = backend.data.get(x.dataId).values;
    if (!ArrayBuffer.isView(v)) return null;
    return output(backend, x.shape, Float32Array.from(v as unknown as ArrayLike<number>));
  };
}

export const BINARY_KERNELS = BINARY;
export const UNARY_KERNELS = UNARY;
export const REDUCE_KERNELS: Record<string, [number, 'axis' | 'reductionIndices']> = {
  Sum: [REDUCE.Sum, 'axis'],
  Mean: [REDUCE.Mean, 'axis'],
  Max: [REDUCE.Max, 'reductionIndices'],
  Min: [REDUCE.Min, 'axis'],
  Prod: [REDUCE.Prod, 'axis'],
};
