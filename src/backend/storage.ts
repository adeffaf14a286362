// Parameter storage. On `native`, weights live in buffers only the backend holds, so its matmul may keep forms
// derived from them (pre-packed weights, bf16 copies) for as long as they are unchanged: a tensor made from a user's
// array, or whose array was handed out by dataSync(), could be rewritten behind the backend's back and is never
// cached. These two helpers move values in and out without giving the backend's own array away.
import { tf, type Tensor } from './tf.js';

/** Kernel name of the native copy into a pooled buffer (registered by native/register.ts). */
export const BACKEND_COPY = 'DinotsBackendCopy';

/** A new tensor with t's values in storage only the backend holds (native, float32); elsewhere a clone of t. */
export function backendCopy(t: Tensor): Tensor {
  if (tf.getBackend() !== 'native' || t.dtype !== 'float32') return tf.clone(t);
  return tf.engine().runKernel(BACKEND_COPY, { x: t } as never, {}) as unknown as Tensor;
}

/** A host copy of t's values (Int32Array for int32, else Float32Array) that leaves the backend's own array unshared. */
export function hostCopy(t: Tensor): Float32Array | Int32Array {
  // dataSync() would hand out the native backend's own array (and mark it escaped); read it in place instead.
  const values = tf.getBackend() === 'native'
    ? (tf.backend() as unknown as { data: { get(id: object): { values: unknown } } }).data.get(t.dataId).values
    : t.dataSync();
  if (!ArrayBuffer.isView(values)) return t.dtype === 'int32' ? Int32Array.from(t.dataSync()) : Float32Array.from(t.dataSync());
  const typed = values as unknown as ArrayLike<number>;
  return t.dtype === 'int32' ? new Int32Array(typed) : new Float32Array(typed);
}
