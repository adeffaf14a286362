// safetensors read/write (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}}, then the raw data.
// Reading uses one positioned read per tensor, so peak memory is the tensors themselves.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { checkHostTensor, decodeBytes, DTYPE_BYTES, encodeTensor, fileDtype, hostDtype, numel } from './dtypes.js';
import { readAt } from './file_io.js';
import type { DType, HostTensor, StateDict } from './types.js';

const MAX_HEADER = 100 * 1024 * 1024; // the format's own limit

const FROM_ST: Record<string, DType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const TO_ST = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<DType, string>;

export interface SafetensorsEntry {
  name: string;
  /** dtype in the file */
  dtype: DType;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  fileSize: number;
}

function parseHeader(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new Error(`${path}: not a safetensors file (${fileSize} bytes, shorter than the 8-byte header length)`);
  const lenBytes = readAt(fd, 0, 8, path);
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER || 8 + headerLen > fileSize)
    throw new Error(`${path}: invalid safetensors header length ${headerLen} for a ${fileSize}-byte file (truncated or not safetensors)`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readAt(fd, 8, headerLen, path)));
  } catch (e) {
    throw new Error(`${path}: safetensors header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path}: safetensors header is not a JSON object`);
  const dataStart = 8 + headerLen;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null) throw new Error(`${path}: __metadata__ must be a string map`);
      metadata = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = FROM_ST[String(e?.dtype)];
    if (!dtype) throw new Error(`${path}: tensor '${name}' has unsupported dtype ${JSON.stringify(e?.dtype)} (supported: ${Object.keys(FROM_ST).join(', ')})`);
    const shape = e.shape;
    const offs = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new Error(`${path}: tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((s) => Number.isSafeInteger(s) && s >= 0) || offs[0] > offs[1])
      throw new Error(`${path}: tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [b, en] = offs as [number, number];
    const want = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (en - b !== want) throw new Error(`${path}: tensor '${name}' [${shape}] ${dtype} needs ${want} bytes but data_offsets span ${en - b}`);
    if (dataStart + en > fileSize)
      throw new Error(`${path}: tensor '${name}' ends at byte ${dataStart + en} past the end of the ${fileSize}-byte file (truncated?)`);
    entries.push({ name, dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + en });
  }
  // Overlapping ranges mean a corrupt or malicious header.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.begin < sorted[i - 1]!.end && sorted[i]!.end > sorted[i]!.begin)
      throw new Error(`${path}: tensors '${sorted[i - 1]!.name}' and '${sorted[i]!.name}' overlap in the data section`);
  return { entries, metadata, fileSize };
}

/** Reads only the header: names, dtypes, shapes and metadata. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/** Reads a safetensors file (in header order); `filter` skips tensors without reading their data. */
export function readSafetensors(path: string, opts: { filter?: (name: string) => boolean } = {}): SafetensorsFile {
  const fd = openSync(path, 'r');
  try {
    const header = parseHeader(fd, path);
    const tensors: StateDict = new Map();
    for (const e of header.entries) {
      if (opts.filter && !opts.filter(e.name)) continue;
      const t: HostTensor = { dtype: hostDtype(e.dtype), shape: e.shape, data: decodeBytes(readAt(fd, e.begin, e.end - e.begin, path), e.dtype, true) };
      if (t.dtype !== e.dtype) t.sourceDtype = e.dtype;
      tensors.set(e.name, t);
    }
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `sd` as safetensors (atomically). Tensors widened from float16/bfloat16 on read are stored in their source
 * dtype again. The data section starts 8-byte aligned; tensors follow each other without gaps, as the format requires.
 */
export function writeSafetensors(path: string, sd: StateDict, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of sd) {
    checkHostTensor(name, t);
    const dtype = fileDtype(t);
    const bytes = encodeTensor(t, dtype);
    header[name] = { dtype: TO_ST[dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    payloads.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data section starts 8-byte aligned
  const jsonBytes = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  writeFileAtomic(path, (sink) => {
    sink.write(len);
    sink.write(jsonBytes);
    for (const p of payloads) sink.write(p);
  });
}
