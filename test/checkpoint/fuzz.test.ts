// Seeded fuzzing of the checkpoint readers: mutations of valid .pth and safetensors files (bit flips, truncations,
// length fields set to extremes, zip entries swapped, pickle opcodes inserted into a re-zipped data.pkl), each read
// with readCheckpoint. Every one must load or throw an Error with a message: no other throw, no hang, no marker file,
// and the process's RSS stays under a bound. A bounded run here; a long one:
//   DINOTS_FUZZ_N=100000 node --import tsx --test test/checkpoint/fuzz.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint, saveSafetensors, savePth } from '../../src/checkpoint/index.js';
import type { StateDict } from '../../src/checkpoint/types.js';
import { ZipReader } from '../../src/checkpoint/zip.js';
import { Rng } from '../../src/util/rng.js';
import { rawZip, tempDir } from './helpers.js';

const N = Number(process.env.DINOTS_FUZZ_N ?? 1500);
const RSS_BOUND = 1.5 * 1024 ** 3;

function stateDict(): StateDict {
  return new Map([
    ['blocks.0.attn.qkv.weight', { dtype: 'float32', shape: [12, 4], data: Float32Array.from({ length: 48 }, (_, i) => i / 7) }],
    ['blocks.0.attn.qkv.bias', { dtype: 'float32', shape: [12], data: new Float32Array(12).fill(0.5) }],
    ['cls_token', { dtype: 'float32', shape: [1, 1, 4], data: Float32Array.from([1, 2, 3, 4]) }],
  ]);
}

test(`${N} mutated checkpoints each load or fail with a clear error`, { timeout: 600_000 }, (t) => {
  const dir = tempDir(t);
  const pth = join(dir, 'good.pth');
  const st = join(dir, 'good.safetensors');
  savePth(pth, stateDict());
  saveSafetensors(st, stateDict());
  const zip = new ZipReader(pth);
  const entries = [...zip.entries.keys()].map((name) => ({ name, data: zip.read(name) }));
  zip.close();
  const pkl = entries.findIndex((e) => e.name.endsWith('/data.pkl'));
  const originals = { pth: new Uint8Array(readFileSync(pth)), safetensors: new Uint8Array(readFileSync(st)) };
  const marker = join(dir, 'PWNED');
  const rng = new Rng([2026, 12, 8]);
  const int = (n: number) => Math.floor(rng.uniform(0, n));
  const outcomes = { loaded: 0, refused: 0 };
  const kinds = new Map<string, number>();
  let peak = 0;
  for (let i = 0; i < N; i++) {
    const format = i % 2 ? 'pth' : 'safetensors';
    let bytes: Uint8Array = Uint8Array.from(originals[format]);
    const kind = ['flip', 'truncate', 'extreme', 'swap', 'opcode'][int(format === 'pth' ? 5 : 3)]!;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    if (kind === 'flip') {
      for (let f = 1 + int(4); f > 0; f--) bytes[int(bytes.length)]! ^= 1 << int(8);
    } else if (kind === 'truncate') {
      bytes = bytes.subarray(0, int(bytes.length));
    } else if (kind === 'extreme') {
      // a 4- or 8-byte little-endian field set to all ones or a huge value (lengths, offsets, counts, sizes)
      const at = int(bytes.length - 8);
      const width = int(2) ? 8 : 4;
      for (let k = 0; k < width; k++) bytes[at + k] = int(2) ? 0xff : k === width - 1 ? 0x7f : 0xff;
    } else if (kind === 'swap') {
      const e = entries.map((x) => ({ ...x }));
      const a = int(e.length);
      const b = int(e.length);
      [e[a]!.data, e[b]!.data] = [e[b]!.data, e[a]!.data];
      bytes = rawZip(e);
    } else {
      // pickle opcodes inserted into data.pkl, re-zipped with a correct CRC so that the unpickler sees them
      const p = entries[pkl]!.data;
      const at = int(p.length);
      const inserted = Uint8Array.from({ length: 1 + int(6) }, () => int(256));
      const mutated = new Uint8Array(p.length + inserted.length);
      mutated.set(p.subarray(0, at));
      mutated.set(inserted, at);
      mutated.set(p.subarray(at), at + inserted.length);
      bytes = rawZip(entries.map((e, k) => (k === pkl ? { name: e.name, data: mutated } : e)));
    }
    const file = join(dir, `m.${format}`);
    writeFileSync(file, bytes);
    const t0 = performance.now();
    try {
      readCheckpoint(file);
      outcomes.loaded++;
    } catch (e) {
      assert.ok(e instanceof Error && e.message.length > 0, `mutation ${i} (${kind}, ${format}) threw a non-Error: ${String(e)}`);
      assert.ok(!(e instanceof assert.AssertionError));
      outcomes.refused++;
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `mutation ${i} (${kind}, ${format}) took ${ms.toFixed(0)} ms`);
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.ok(peak < RSS_BOUND, `RSS ${(peak / 2 ** 20).toFixed(0)} MB after mutation ${i} (${kind}, ${format})`);
  }
  assert.equal(existsSync(marker), false);
  assert.ok(outcomes.refused > N / 4 && outcomes.loaded > 0, JSON.stringify(outcomes));
  t.diagnostic(`fuzz: ${N} files, ${JSON.stringify(Object.fromEntries(kinds))}, loaded ${outcomes.loaded}, refused ${outcomes.refused}, peak RSS ${(peak / 2 ** 20).toFixed(0)} MB`);
});
