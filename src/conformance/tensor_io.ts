// Raw little-endian C-order .bin tensors of the fixture format. All values are widened to Float64Array for comparison,
// except that readTensor keeps the natural typed array (Float32Array for float32, BigInt64Array for int64...).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BinDType, TensorEntry } from './manifest.js';

export type BinData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface BinTensor {
  dtype: BinDType;
  shape: number[];
  data: BinData;
}

const BYTES: Record<BinDType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1, float16: 2 };

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function readTensor(dir: string, entry: TensorEntry): BinTensor {
  const path = join(dir, entry.file);
  const buf = readFileSync(path);
  const n = numel(entry.shape);
  const size = BYTES[entry.dtype];
  if (size === undefined) throw new Error(`${path}: unsupported dtype ${entry.dtype}`);
  if (buf.length !== n * size) {
    throw new Error(`${path}: ${buf.length} bytes on disk, shape [${entry.shape}] of ${entry.dtype} needs ${n * size}`);
  }
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  let data: BinData;
  switch (entry.dtype) {
    case 'float32': data = new Float32Array(ab); break;
    case 'float64': data = new Float64Array(ab); break;
    case 'int64': data = new BigInt64Array(ab); break;
    case 'int32': data = new Int32Array(ab); break;
    case 'uint8': case 'bool': data = new Uint8Array(ab); break;
    default: throw new Error(`${path}: dtype ${entry.dtype} cannot be read`);
  }
  return { dtype: entry.dtype, shape: [...entry.shape], data };
}

export function writeTensor(dir: string, file: string, t: BinTensor): void {
  const path = join(dir, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** Any tensor's values as float64 (int64 via Number). */
export function toFloat64(t: BinTensor): Float64Array {
  if (t.data instanceof Float64Array) return t.data;
  if (t.data instanceof BigInt64Array) return Float64Array.from(t.data, (v) => Number(v));
  return Float64Array.from(t.data as ArrayLike<number>);
}

export function f32(shape: number[], data: ArrayLike<number>): BinTensor {
  return { dtype: 'float32', shape, data: Float32Array.from(data) };
}
export function f64(shape: number[], data: ArrayLike<number>): BinTensor {
  return { dtype: 'float64', shape, data: Float64Array.from(data) };
}
export function i64(shape: number[], data: ArrayLike<number>): BinTensor {
  return { dtype: 'int64', shape, data: BigInt64Array.from(Array.from(data), (v) => BigInt(v)) };
}
