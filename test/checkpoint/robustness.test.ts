// Hostile and damaged files: each must end in a clear Error (or an inert value), never a crash, a hang, code
// execution or unbounded memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { readCheckpoint, savePth } from '../../src/checkpoint/index.js';
import { PyObject, unpickle } from '../../src/checkpoint/pickle.js';
import { extractStateDict, readPth } from '../../src/checkpoint/pth.js';
import { ZipReader } from '../../src/checkpoint/zip.js';
import type { StateDict } from '../../src/checkpoint/types.js';
import { concatBytes as cat, rawZip, tempDir } from './helpers.js';

const enc = new TextEncoder();
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

function smallStateDict(): StateDict {
  return new Map([
    ['a.weight', { dtype: 'float32', shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => i / 3) }],
    ['a.bias', { dtype: 'float32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) }],
  ]);
}

test('a pickle calling os.system is never executed (an inert object); a .pth naming it, even after valid values, is refused', (t) => {
  const dir = tempDir(t);
  const marker = join(dir, 'PWNED');
  const cmd = `touch ${marker}`;
  // \x80\x02 c'os\nsystem\n' X<cmd> TUPLE1 REDUCE STOP
  const evil = cat([0x80, 2], 'cos\nsystem\n', [0x58, ...u32(cmd.length)], cmd, [0x85, 0x52, 0x2e]);
  const v = unpickle(evil);
  assert.ok(v instanceof PyObject);
  assert.equal(v.className, 'os.system');
  assert.deepEqual(v.args, [cmd]);
  // the same inside a torch-style zip: refused, naming the global; nothing runs
  const file = join(dir, 'evil.pth');
  writeFileSync(file, rawZip([{ name: 'evil/data.pkl', data: evil }]));
  assert.throws(() => readPth(file), /refers to the Python global 'os\.system', which runs code/);
  // a payload after valid values is refused too, not dropped: {'w': 1, 'x': posix.system(cmd)}
  const key = (k: string) => cat([0x58, ...u32(k.length)], k);
  const after = cat([0x80, 2, 0x7d, 0x28], key('w'), [0x4b, 1], key('x'), 'cposix\nsystem\n', key(cmd), [0x85, 0x52, 0x75, 0x2e]);
  assert.equal((unpickle(after) as Map<string, unknown>).get('w'), 1);
  writeFileSync(file, rawZip([{ name: 'evil/data.pkl', data: after }]));
  assert.throws(() => readCheckpoint(file), /'posix\.system'/);
  // builtins.eval / subprocess via STACK_GLOBAL + NEWOBJ are inert too
  const evil2 = cat([0x80, 4, 0x8c, 8], 'builtins', [0x8c, 4], 'eval', [0x93, 0x8c, 2], '42', [0x85, 0x81, 0x2e]);
  assert.equal((unpickle(evil2) as PyObject).className, 'builtins.eval');
  assert.equal(existsSync(marker), false);
});

test('truncated and bit-flipped .pth files give errors, never crashes or hangs', (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.pth');
  savePth(good, smallStateDict());
  const bytes = readFileSync(good);
  const bad = join(dir, 'bad.pth');
  for (const len of [0, 3, 30, 100, bytes.length / 2, bytes.length - 1]) {
    writeFileSync(bad, bytes.subarray(0, Math.floor(len)));
    assert.throws(() => readCheckpoint(bad), (e: Error) => e instanceof Error && e.message.length > 0, `truncated to ${len}`);
  }
  // Flip one bit at many positions: a clear Error or (flip in padding) an intact result; CRC-32 catches data damage.
  let errors = 0;
  for (let pos = 0; pos < bytes.length; pos += 7) {
    const b = Buffer.from(bytes);
    b[pos]! ^= 1 << (pos % 8);
    writeFileSync(bad, b);
    try {
      const sd = readCheckpoint(bad).stateDict;
      assert.deepEqual([...sd.keys()], ['a.weight', 'a.bias']);
      assert.deepEqual([...(sd.get('a.bias')!.data as Float32Array)], [1, 2, 3, 4]);
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof assert.AssertionError), `flip at ${pos}: ${String(e)}`);
      errors++;
    }
  }
  assert.ok(errors > 0);
});

test('zip path traversal, duplicate names and absurd entry sizes are refused', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'z.pth');
  const pkl = cat([0x80, 2, 0x7d, 0x2e]); // {}
  const cases: [string, Parameters<typeof rawZip>[0], RegExp][] = [
    ['traversal', [{ name: '../evil/data.pkl', data: pkl }], /path traversal/],
    ['absolute', [{ name: '/etc/data.pkl', data: pkl }], /unsafe zip entry name/],
    ['duplicate', [{ name: 'a/data.pkl', data: pkl }, { name: 'a/data.pkl', data: pkl }], /duplicate zip entry/],
    ['no pickle', [{ name: 'a/version', data: enc.encode('3\n') }], /expected one '<archive>\/data.pkl'/],
    ['bad crc', [{ name: 'a/data.pkl', data: pkl, crc: 1234 }], /CRC-32 mismatch/],
  ];
  for (const [name, entries, re] of cases) {
    writeFileSync(file, rawZip(entries));
    assert.throws(() => readPth(file), re, name);
  }
});

test('zip bombs: impossible compression ratios and lying sizes are refused before inflating', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bomb.pth');
  const zeros = deflateRawSync(new Uint8Array(1 << 20)); // 1 MiB of zeros → ~1 KiB
  // declares 4 GB from ~1 KiB
  writeFileSync(file, rawZip([{ name: 'a/data.pkl', data: zeros, method: 8, size: 0xfffffff0 }]));
  assert.throws(() => readPth(file), /zip bomb/);
  // declares less than it inflates to: inflation stops at the declared size
  writeFileSync(file, rawZip([{ name: 'a/data.pkl', data: zeros, method: 8, size: 1000 }]));
  assert.throws(() => readPth(file), /does not inflate to its declared 1000 bytes|inflates to/);
  // central directory claiming more entries than the file can hold
  const z = Buffer.from(rawZip([{ name: 'a/data.pkl', data: cat([0x80, 2, 0x7d, 0x2e]) }]));
  z.writeUInt16LE(0xfffe, z.length - 12);
  writeFileSync(file, z);
  assert.throws(() => readPth(file), /corrupt zip central directory/);
});

test('a compressed storage record never inflates past what its storage needs', (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.pth');
  savePth(good, smallStateDict());
  const zip = new ZipReader(good);
  const entries = [...zip.entries.keys()].map((name) => ({ name, data: zip.read(name) }));
  zip.close();
  // The bias storage (4 float32 = 16 bytes) as a deflate stream of its bytes followed by 64 MiB of zeros.
  const bias = entries.find((e) => e.data.byteLength === 16 && /\/data\/\d+$/.test(e.name))!;
  const padded = new Uint8Array(16 + (64 << 20));
  padded.set(bias.data);
  const file = join(dir, 'padded.pth');
  writeFileSync(file, rawZip(entries.map((e) => (e === bias ? { name: e.name, data: deflateRawSync(padded), method: 8, size: padded.length, crc: crc32(padded) >>> 0 } : e))));
  assert.throws(() => readCheckpoint(file), /compressed storage record '.*\/data\/\d+' declares 67108880 bytes but its storage needs 16/);
  // Compressed to exactly its size, the record loads.
  writeFileSync(file, rawZip(entries.map((e) => (e === bias ? { name: e.name, data: deflateRawSync(e.data), method: 8, size: 16, crc: crc32(e.data) >>> 0 } : e))));
  assert.deepEqual([...(readCheckpoint(file).stateDict.get('a.bias')!.data as Float32Array)], [1, 2, 3, 4]);
});

test('pickle bombs: deep nesting, absurd lengths, memo abuse, missing STOP', () => {
  // 100k nested lists: ] x N then APPEND x N-1 (bottom-up nesting)
  const n = 100_000;
  const deep = cat([0x80, 2], new Array(n).fill(0x5d), new Array(n - 1).fill(0x61), [0x2e]);
  assert.throws(() => unpickle(deep), /nested deeper than 1000/);
  // BINUNICODE claiming 4 GB
  assert.throws(() => unpickle(cat([0x80, 2, 0x58], u32(0xfffffff0), 'abc')), /BINUNICODE length 4294967280 exceeds the 3 bytes left/);
  // BINUNICODE8 / BINBYTES8 with absurd 64-bit lengths
  assert.throws(() => unpickle(cat([0x80, 4, 0x8d], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 'x')), /absurd|exceeds/);
  assert.throws(() => unpickle(cat([0x80, 4, 0x8e], [0, 0, 0, 0, 1, 0, 0, 0], 'x')), /exceeds/);
  // LONG4 with a huge length
  assert.throws(() => unpickle(cat([0x80, 2, 0x8b], u32(0x7fffffff), [1])), /exceeds/);
  // memo get of a key never put
  assert.throws(() => unpickle(cat([0x80, 2, 0x6a], u32(123456), [0x2e])), /memo key 123456 missing/);
  // no STOP, stack underflow, unknown opcode
  assert.throws(() => unpickle(cat([0x80, 2, 0x5d])), /without STOP/);
  assert.throws(() => unpickle(cat([0x80, 2, 0x61, 0x2e])), /stack underflow/);
  assert.throws(() => unpickle(cat([0x80, 2, 0xff])), /unknown pickle opcode 0xff/);
  // a refused legacy storage global
  assert.throws(
    () => unpickle(cat([0x80, 2], 'ctorch.storage\n_load_from_bytes\n', [0x2e]), { refuse: { 'torch.storage._load_from_bytes': 'legacy storage; re-save' } }),
    /legacy storage; re-save/,
  );
});

test('tensor metadata that reads outside its storage is refused', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'oob.pth');
  // _rebuild_tensor_v2(storage(4 floats), offset 2, size (4,), stride (1,), False, OrderedDict())
  const pkl = cat(
    [0x80, 2, 0x7d],
    [0x58, ...u32(1)], 'w',
    'ctorch._utils\n_rebuild_tensor_v2\n',
    [0x28, 0x28],
    [0x58, ...u32(7)], 'storage',
    'ctorch\nFloatStorage\n',
    [0x58, ...u32(1)], '0',
    [0x58, ...u32(3)], 'cpu',
    [0x4b, 4, 0x74, 0x51],
    [0x4b, 2, 0x4b, 4, 0x85, 0x4b, 1, 0x85, 0x89],
    'ccollections\nOrderedDict\n',
    [0x29, 0x52, 0x74, 0x52, 0x73, 0x2e],
  );
  writeFileSync(file, rawZip([{ name: 'oob/data.pkl', data: pkl }, { name: 'oob/data/0', data: new Uint8Array(16) }]));
  assert.throws(() => readPth(file), /reads past its storage of 4 elements/);
  // stride 0 with an enormous size: would expand 4 floats into 16 GB
  const orig = Buffer.from(pkl);
  const at = orig.indexOf(Buffer.from([0x4b, 2, 0x4b, 4, 0x85, 0x4b, 1, 0x85]));
  const fixed = cat(orig.subarray(0, at), [0x4b, 0, 0x4a, ...u32(0x7fffffff), 0x85, 0x4b, 0, 0x85], orig.subarray(at + 8));
  writeFileSync(file, rawZip([{ name: 'oob/data.pkl', data: fixed }, { name: 'oob/data/0', data: new Uint8Array(16) }]));
  assert.throws(() => readPth(file), /refused \(corrupt or hostile strides\)/);
  // a storage record shorter than its declared element count
  writeFileSync(file, rawZip([{ name: 'oob/data.pkl', data: pkl }, { name: 'oob/data/0', data: new Uint8Array(8) }]));
  assert.throws(() => readPth(file), /claims 4 float32 elements but its record has 8 bytes/);
});

test('legacy (pre-1.6) torch.save files get a re-save hint; unknown formats a clear message', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'legacy.pth');
  writeFileSync(file, Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80]));
  assert.throws(() => readCheckpoint(file), /legacy torch.save format.*re-save it with torch>=1.6/s);
  const txt = join(dir, 'notes.txt');
  writeFileSync(txt, 'hello world');
  assert.throws(() => readCheckpoint(txt), /unknown checkpoint format/);
  assert.throws(() => extractStateDict(new Map([['epoch', 3]]), { source: 'x.pth' }), /x.pth: no state dict.*epoch/);
});
