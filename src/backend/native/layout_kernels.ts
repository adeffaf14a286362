// Native kernels that move data: Transpose, Concat, Slice (non-contiguous case), and the copy into a pooled buffer.
import { tf } from '../tf.js';
import { BROADCAST_COPY, type NativeAddon } from './addon.js';
import { allocF32 } from './buffer_pool.js';
import { f32, output, sizeOf, type NativeKernel } from './kernel_util.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';

export function transposeKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const perm = attrs.perm as number[];
    const outShape = perm.map((p) => x.shape[p]!);
    const out = allocF32(xv.length);
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
    const out = allocF32(sizeOf(outShape));
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
    const out = allocF32(sizeOf(size));
    addon.slice(xv, x.shape, begin, size, out);
    return output(backend, size, out);
  };
}

/** Tile as a broadcast copy: x [d0, d1, ...] viewed as [1, d0, 1, d1, ...] and broadcast to [r0, d0, r1, d1, ...]. */
export function tileKernel(addon: NativeAddon): NativeKernel {
  const dummy = new Float32Array(1);
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    const reps = attrs.reps as number[];
    if (!xv || reps.length !== x.shape.length) return null;
    const aShape = x.shape.flatMap((d) => [1, d]);
    const wide = x.shape.flatMap((d, i) => [reps[i]!, d]);
    const outShape = x.shape.map((d, i) => d * reps[i]!);
    const out = allocF32(sizeOf(outShape));
    if (out.length > 0) addon.binary(BROADCAST_COPY, xv, aShape, dummy, [1], out, wide);
    return output(backend, outShape, out);
  };
}

/** SplitV: contiguous pieces become subarray views (like the cpu Slice); strided ones are copied natively. */
export function splitKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as never, attrs.numOrSizeSplits as number[] | number, axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[axis] = s;
      const b = begin.slice();
      begin[axis]! += s;
      if (tf.slice_util.isSliceContinous(x.shape, b, size)) {
        const offset = tf.slice_util.computeFlatOffset(b, tf.util.computeStrides(x.shape));
        return output(backend, size, xv.subarray(offset, offset + sizeOf(size)));
      }
      const out = allocF32(sizeOf(size));
      addon.slice(xv, x.shape, b, size, out);
      return output(backend, size, out);
    });
  };
}

/** Pack (tf.stack): a concat of the inputs along the new axis. */
export function packKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }) => {
    const ts = Object.values(inputs) as TensorInfo[];
    const vs = ts.map((t) => f32(backend, t));
    if (ts.length < 2 || vs.some((v) => !v)) return null;
    const shape = ts[0]!.shape;
    if (ts.some((t) => String(t.shape) !== String(shape))) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, [...shape, ts.length])[0]!;
    const outShape = [...shape.slice(0, axis), ts.length, ...shape.slice(axis)];
    const inner = sizeOf(shape.slice(axis));
    const out = allocF32(sizeOf(outShape));
    addon.concat(vs as Float32Array[], ts.map(() => inner), sizeOf(shape.slice(0, axis)), out);
    return output(backend, outShape, out);
  };
}

/** {x} → x's values in a fresh pool buffer, which no other code holds (storage.ts: backendCopy). */
export function backendCopyKernel(): NativeKernel {
  return ({ inputs, backend }) => {
    const xv = f32(backend, inputs.x);
    if (!xv) return null;
    const out = allocF32(xv.length);
    out.set(xv);
    return output(backend, inputs.x!.shape, out);
  };
}
