// Writes a state dict as torch.save does (zip container, pickle protocol 2), so `torch.load` reads it and the official
// model loads it with strict=True: an OrderedDict of `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`
// whose storages are persistent ids ('storage', torch.<Type>Storage, key, 'cpu', numel) → `archive/data/<key>`.
import { basename, extname } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { checkHostTensor, encodeTensor, fileDtype } from './dtypes.js';
import type { DType, StateDict } from './types.js';
import { writeZip, type ZipRecord } from './zip.js';

const STORAGE_TYPE: Record<DType, string> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  float64: 'DoubleStorage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** Minimal pickle protocol-2 emitter for the few opcodes a state dict needs. */
class PickleWriter {
  private chunks: number[] = [];
  private readonly enc = new TextEncoder();
  byte(...b: number[]) {
    for (const x of b) this.chunks.push(x);
  }
  private u32(v: number) {
    this.byte(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  global(module: string, name: string) {
    this.byte(0x63, ...this.enc.encode(`${module}\n${name}\n`));
  }
  str(s: string) {
    const b = this.enc.encode(s);
    this.byte(0x58);
    this.u32(b.length);
    this.byte(...b);
  }
  int(v: number) {
    if (v >= 0 && v < 256) this.byte(0x4b, v);
    else if (v >= 0 && v < 65536) this.byte(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      this.byte(0x4a);
      this.u32(v >>> 0);
    } else {
      // LONG1: little-endian two's complement
      let x = BigInt(v);
      const out: number[] = [];
      while (x !== 0n && x !== -1n) {
        out.push(Number(x & 0xffn));
        x >>= 8n;
      }
      if (out.length === 0 || ((out[out.length - 1]! & 0x80) !== 0) !== v < 0) out.push(v < 0 ? 0xff : 0);
      this.byte(0x8a, out.length, ...out);
    }
  }
  tuple(items: number[]) {
    if (items.length === 0) return this.byte(0x29);
    this.byte(0x28);
    for (const x of items) this.int(x);
    this.byte(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** The torch.save archive name torch would use: the file name without its extension. */
function archiveName(path: string): string {
  const n = basename(path, extname(path)).replace(/[^A-Za-z0-9_.-]/g, '_');
  return n || 'archive';
}

export function savePth(path: string, sd: StateDict): void {
  const archive = archiveName(path);
  const p = new PickleWriter();
  p.byte(0x80, 2);
  p.global('collections', 'OrderedDict');
  p.byte(0x29, 0x52); // () REDUCE
  const records: ZipRecord[] = [];
  let key = 0;
  for (const [name, t] of sd) {
    checkHostTensor(name, t);
    const dtype = fileDtype(t);
    const numel = t.data.length;
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.byte(0x28); // MARK (args)
    p.byte(0x28); // MARK (persistent id)
    p.str('storage');
    p.global('torch', STORAGE_TYPE[dtype]);
    p.str(String(key));
    p.str('cpu');
    p.int(numel);
    p.byte(0x74, 0x51); // TUPLE BINPERSID
    p.int(0); // storage offset
    p.tuple(t.shape);
    p.tuple(stride);
    p.byte(0x89); // requires_grad False
    p.global('collections', 'OrderedDict');
    p.byte(0x29, 0x52); // backward hooks: OrderedDict()
    p.byte(0x74, 0x52); // TUPLE REDUCE
    p.byte(0x73); // SETITEM
    records.push({ name: `${archive}/data/${key}`, data: encodeTensor(t, dtype) });
    key++;
  }
  p.byte(0x2e); // STOP
  const enc = new TextEncoder();
  writeFileAtomic(path, (sink) =>
    writeZip(sink, [
      { name: `${archive}/data.pkl`, data: p.bytes() },
      { name: `${archive}/byteorder`, data: enc.encode('little') },
      ...records,
      { name: `${archive}/version`, data: enc.encode('3\n') },
    ]),
  );
}
