// Native kernels that move data: Transpose, Concat, Slice (non-contiguous case).
import { tf } from '../tf.js';
import type { NativeAddon } from './addon.js';
import { f32, output, sizeOf, type NativeKernel } from './kernel_util.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';

export function transposeKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const perm = attrs.perm as number[];
    const outShape = perm.map((p) => x.shape[p]!);
    const out = new Float32Array(xv.length);
    addon.transpose(xv, x.shape, perm, out);
    return output(backend, outShape, out);
  };
}

export function concatKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const all = Object.values(inputs) as TensorInfo[];
    if (all.length === 0) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, all[0]!.shape)[0]!;
    const ts = all.filter((t) => sizeOf(t.shape) > 0);
    const vs = ts.map((t) => f32(backend, t));
    if (ts.length < 2 || vs.some((v) => !v)) return null;
    const outShape = tf.backend_util.computeOutShape(ts.map((t) => t.shape), axis);
    const outer = sizeOf(outShape.slice(0, axis));
    const out = new Float32Array(sizeOf(outShape));
    addon.concat(vs as Float32Array[], ts.map((t) => sizeOf(t.shape.slice(axis))), outer, out);
    return output(backend, outShape, out);
  };
}

/** Contiguous slices stay with the cpu kernel (a zero-copy subarray view); the strided ones are copied natively. */
export function sliceKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const [begin, size] = tf.slice_util.parseSliceParams(x as never, attrs.begin as number[], attrs.size as number[]);
    tf.slice_util.assertParamsValid(x as never, begin, size);
    if (tf.slice_util.isSliceContinous(x.shape, begin, size)) return null;
    const out = new Float32Array(sizeOf(size));
    addon.slice(xv, x.shape, begin, size, out);
    return output(backend, size, out);
  };
}
