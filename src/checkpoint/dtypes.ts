// Element types of checkpoint files: byte sizes, decoding raw little-endian bytes into HostTensor data (float16 and
// bfloat16 widened to float32) and encoding back (narrowed again when the tensor remembers its source dtype).
import { endianness } from 'node:os';
import type { DType, HostData, HostTensor } from './types.js';

if (endianness() !== 'LE') throw new Error('dinots checkpoint I/O assumes a little-endian host');

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** float16 bits → float32 value. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 value → float16 bits, round to nearest even (exact for values that came from float16). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** float32 value → bfloat16 bits, round to nearest even. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/**
 * Decodes `bytes` (little-endian, exactly numel*itemsize long) into an aligned typed array.
 * float16/bfloat16 become Float32Array. With `owned`, a buffer that spans its whole ArrayBuffer is used without a copy.
 */
export function decodeBytes(bytes: Uint8Array, dtype: DType, owned = false): HostData {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  if (!Number.isInteger(n)) throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  // A copy into a fresh ArrayBuffer gives the typed array the alignment it needs.
  const own = () => {
    if (owned && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer as ArrayBuffer;
    const buf = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(buf).set(bytes);
    return buf;
  };
  switch (dtype) {
    case 'float32':
      return new Float32Array(own());
    case 'float64':
      return new Float64Array(own());
    case 'int64':
      return new BigInt64Array(own());
    case 'int32':
      return new Int32Array(own());
    case 'int16':
      return new Int16Array(own());
    case 'int8':
      return new Int8Array(own());
    case 'uint8':
    case 'bool':
      return new Uint8Array(own());
    case 'float16': {
      const src = new Uint16Array(own());
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]!);
      return out;
    }
    case 'bfloat16': {
      const src = new Uint16Array(own());
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
      return out;
    }
  }
}

/** The dtype a tensor's HostData holds once decoded (float16/bfloat16 → float32). */
export function hostDtype(dtype: DType): DType {
  return dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
}

/** The dtype a tensor is written as: its source dtype when it was widened on read, else its own. */
export function fileDtype(t: HostTensor): DType {
  return t.dtype === 'float32' && (t.sourceDtype === 'float16' || t.sourceDtype === 'bfloat16') ? t.sourceDtype : t.dtype;
}

/** Raw little-endian bytes of `t` stored as `dtype` (a view when no conversion is needed). */
export function encodeTensor(t: HostTensor, dtype: DType = fileDtype(t)): Uint8Array {
  const d = t.data;
  if (dtype === 'float16' || dtype === 'bfloat16') {
    if (!(d instanceof Float32Array)) throw new Error(`cannot store a ${t.dtype} tensor as ${dtype}`);
    const out = new Uint16Array(d.length);
    const conv = dtype === 'float16' ? floatToHalf : floatToBf16;
    for (let i = 0; i < d.length; i++) out[i] = conv(d[i]!);
    return new Uint8Array(out.buffer);
  }
  if (hostDtype(dtype) !== t.dtype) throw new Error(`cannot store a ${t.dtype} tensor as ${dtype}`);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Checks that data length and dtype agree with the shape. */
export function checkHostTensor(name: string, t: HostTensor): void {
  const n = numel(t.shape);
  if (t.data.length !== n) throw new Error(`tensor '${name}': shape [${t.shape}] needs ${n} elements, data has ${t.data.length}`);
}
