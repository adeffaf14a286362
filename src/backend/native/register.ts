// Registers the `native` TF.js backend: the tfjs-backend-cpu class and every cpu kernel, with the hot kernels
// replaced by the N-API addon (oneDNN matmul, OpenMP loops) and the fused Dinots* kernels added.
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { backend_util, DataId, DataType, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { clearPool, noteEscaped, noteStored, recycle, setReleaseHook } from './buffer_pool.js';
import { tf } from '../tf.js';
import { BINARY, UNARY, loadAddon, type NativeAddon } from './addon.js';
import { fusedKernels, registerFusedGradients } from './fused_kernels.js';
import { withFallback, type NativeKernel } from './kernel_util.js';
import {
  backendCopyKernel, concatKernel, packKernel, sliceKernel, splitKernel, tileKernel, transposeKernel,
} from './layout_kernels.js';
import { BACKEND_COPY } from '../storage.js';
import {
  addNKernel, binaryKernel, castKernel, fusedMatMulKernel, matMulKernel, REDUCE_KERNELS, reduceKernel, softmaxKernel, unaryKernel,
} from './math_kernels.js';

export const NATIVE_BACKEND = 'native';

/** The cpu backend's storage and fallbacks; only the kernels differ, and output buffers are recycled. */
export class NativeBackend extends MathBackendCPU {
  private storing = false;

  override write(values: backend_util.BackendValues, shape: number[], dtype: DataType): DataId {
    noteStored(values, this.storing);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: backend_util.BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    noteStored(values, false);
    super.move(dataId, values, shape, dtype, refCount);
  }

  /** Stores a buffer fresh from allocF32 as a new tensor (the one store that does not escape it). */
  storeOutput(shape: number[], values: Float32Array): TensorInfo {
    this.storing = true;
    try {
      return this.makeTensorInfo(shape, 'float32', values);
    } finally {
      this.storing = false;
    }
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    const values = super.readSync(dataId);
    noteEscaped(values);
    return values;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId)!.values : undefined;
    const disposed = super.disposeData(dataId, force);
    if (disposed && values !== undefined && !this.data.has(dataId)) recycle(values);
    return disposed;
  }

  override dispose(): void {
    clearPool();
    super.dispose();
  }
}

let registered = false;

/** Native replacements, by TF.js kernel name; each declines (falls back to cpu) on inputs it does not handle. */
function nativeOverrides(addon: NativeAddon): Record<string, NativeKernel> {
  const k: Record<string, NativeKernel> = {
    BatchMatMul: matMulKernel(addon),
    _FusedMatMul: fusedMatMulKernel(addon),
    AddN: addNKernel(addon),
    Transpose: transposeKernel(addon),
    Concat: concatKernel(addon),
    Slice: sliceKernel(addon),
    Softmax: softmaxKernel(addon),
    Cast: castKernel(),
    Tile: tileKernel(addon),
    SplitV: splitKernel(addon),
    Pack: packKernel(addon),
  };
  for (const [name, op] of Object.entries(BINARY)) k[name] = binaryKernel(addon, op);
  for (const [name, op] of Object.entries(UNARY)) k[name] = unaryKernel(addon, op);
  for (const [name, [op, axisAttr]] of Object.entries(REDUCE_KERNELS)) k[name] = reduceKernel(addon, op, axisAttr);
  return k;
}

/** Registers the backend (not activating it); returns null on success, else why it is unavailable. */
export function registerNativeBackend(): string | null {
  if (registered) return null;
  let addon: NativeAddon;
  try {
    addon = loadAddon();
  } catch (e) {
    return `native backend unavailable: ${(e as Error).message}`;
  }
  const overrides = nativeOverrides(addon);
  const cpuKernels = tf.getKernelsForBackend('cpu');
  if (cpuKernels.length === 0) return 'native backend unavailable: no tfjs-backend-cpu kernels are registered';
  for (const cfg of cpuKernels) {
    const native = overrides[cfg.kernelName];
    const kernelFunc: KernelFunc = native ? withFallback(cfg.kernelName, native, cfg.kernelFunc) : cfg.kernelFunc;
    tf.registerKernel({ ...cfg, backendName: NATIVE_BACKEND, kernelFunc } as KernelConfig);
  }
  for (const [kernelName, native] of Object.entries({ ...fusedKernels(addon), [BACKEND_COPY]: backendCopyKernel() })) {
    const kernelFunc: KernelFunc = (args) => {
      const out = native(args as Parameters<NativeKernel>[0]);
      if (!out) throw new Error(`native backend: ${kernelName} got inputs it cannot handle`);
      return out;
    };
    tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
  }
  registerFusedGradients();
  // The matmul keeps forms derived from pool buffers (bf16 copies, packed weights) until the buffer is released.
  setReleaseHook((buffer) => addon.forgetCached(buffer));
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 3);
  registered = true;
  return null;
}

/** The loaded addon (for the fused optimizer and benchmarks); null when the backend is not registered. */
export function nativeAddon(): NativeAddon | null {
  return registered ? loadAddon() : null;
}
