// Shared helpers for the checkpoint tests: temp folders, a Python with torch (tests that need it skip without one),
// tensor equality, and a raw zip builder for hostile archives.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { HostTensor, StateDict } from '../../src/checkpoint/types.js';
import { concatArrays } from '../../src/util/arrays.js';

export const FIXTURES = process.env.DINOTS_FIXTURES ?? join(new URL('../..', import.meta.url).pathname, '..', 'shared', 'conformance', 'fixtures');
export const CKPTS = join(FIXTURES, 'checkpoints');

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'dinots-ckpt-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

let cachedPython: string | null | undefined;
/** A python3 that can `import torch`, or null (DINOTS_TORCH_PYTHON overrides the search). */
export function torchPython(): string | null {
  if (cachedPython !== undefined) return cachedPython;
  const candidates = [process.env.DINOTS_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[];
  cachedPython = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      cachedPython = py;
      break;
    }
  }
  return cachedPython;
}

export function runPython(py: string, code: string, args: string[] = []): string {
  const r = spawnSync(py, ['-c', code, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function sameTensor(a: HostTensor | undefined, b: HostTensor | undefined): boolean {
  if (!a || !b || a.dtype !== b.dtype || a.shape.join() !== b.shape.join() || a.data.length !== b.data.length) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.every((v, i) => v === y[i]);
}

/** Names of tensors that differ (missing on either side, shape, dtype or any bit). */
export function diffStateDicts(a: StateDict, b: StateDict): string[] {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) if (!sameTensor(a.get(k), b.get(k))) out.push(k);
  return out;
}

export interface RawZipEntry {
  name: string;
  /** Bytes as stored in the archive. */
  data: Uint8Array;
  method?: number;
  /** Declared uncompressed size (defaults to data length). */
  size?: number;
  crc?: number;
}

/** A zip with exactly the entries given (names and sizes unchecked), for hostile-archive tests. */
export function rawZip(entries: RawZipEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const e of entries) {
    const name = enc.encode(e.name);
    const crc = e.crc ?? crc32(e.data) >>> 0;
    const size = e.size ?? e.data.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(8, e.method ?? 0, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, e.data.length, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    parts.push(new Uint8Array(local.buffer), name, e.data);
    const c = new DataView(new ArrayBuffer(46));
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(10, e.method ?? 0, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, e.data.length, true);
    c.setUint32(24, size, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    central.push(new Uint8Array(c.buffer), name);
    offset += 30 + name.length + e.data.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return concatBytes(...parts, ...central, new Uint8Array(end.buffer));
}

/** Concatenates byte parts; strings are UTF-8 encoded, number arrays taken as bytes. */
export function concatBytes(...parts: (Uint8Array | number[] | string)[]): Uint8Array {
  const enc = new TextEncoder();
  const bufs = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p instanceof Uint8Array ? p : Uint8Array.from(p)));
  return concatArrays(Uint8Array, bufs);
}
