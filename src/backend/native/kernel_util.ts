// Helpers shared by the native kernels: zero-copy access to a tensor's Float32Array and output creation.
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

export type Backend = MathBackendCPU;

/** A native kernel body: returns null when it does not handle these inputs, and the cpu kernel runs instead. */
export type NativeKernel = (args: { inputs: NamedTensorInfoMap; backend: Backend; attrs: NamedAttrMap }) =>
  TensorInfo | TensorInfo[] | null;

/**
 * The tensor's backing Float32Array (no copy), or null when it is not float32. A float32 tensor can share another
 * typed array (the cpu Cast from bool/int32 keeps the source buffer); that one is converted.
 */
export function f32(backend: Backend, t: TensorInfo | undefined): Float32Array | null {
  if (!t || t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  return ArrayBuffer.isView(v) ? Float32Array.from(v as unknown as ArrayLike<number>) : null;
}

/** Like f32 for a tensor a native kernel produced or requires: throws instead of returning null. */
export function mustF32(backend: Backend, t: TensorInfo, what: string): Float32Array {
  const v = f32(backend, t);
  if (!v) throw new Error(`native backend: ${what} must be a float32 tensor (got ${t.dtype})`);
  return v;
}

export function output(backend: Backend, shape: number[], values: Float32Array): TensorInfo {
  const b = backend as Backend & { storeOutput?: (shape: number[], values: Float32Array) => TensorInfo };
  return b.storeOutput ? b.storeOutput(shape, values) : backend.makeTensorInfo(shape, 'float32', values);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** How often an overridden kernel declined and the cpu kernel ran (tests check the native path really ran). */
export const fallbackStats = { count: 0, last: '' };

/**
 * Runs `native` and falls back to the cpu kernel when it declines. Kernels in DECLINE_BY_DESIGN hand common cases
 * to cpu on purpose (Cast float32→float32 is a no-op view, contiguous Slice a subarray) and are not counted.
 */
export const DECLINE_BY_DESIGN = new Set(['Cast', 'Slice']);

export function withFallback(name: string, native: NativeKernel, fallback: KernelFunc): KernelFunc {
  const counted = !DECLINE_BY_DESIGN.has(name);
  return (args) => {
    const out = native(args as Parameters<NativeKernel>[0]);
    if (out) return out;
    if (!counted) return fallback(args);
    fallbackStats.count++;
    fallbackStats.last = name;
    return fallback(args);
  };
}
