import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { floatToBf16, floatToHalf, halfToFloat } from '../../src/checkpoint/dtypes.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/checkpoint/safetensors.js';
import type { StateDict } from '../../src/checkpoint/types.js';
import { diffStateDicts, tempDir } from './helpers.js';

test('float16 / bfloat16 conversions (hand-checked bit patterns)', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2), 0xc000);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(1e6), 0x7c00); // overflow → inf
  assert.equal(floatToHalf(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(halfToFloat(0x3555), 0.333251953125);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0xfc00), -Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(-3.140625), 0xc049);
  for (let h = 0; h < 0x7c00; h += 7) assert.equal(floatToHalf(halfToFloat(h)), h);
});

test('safetensors round trip of every dtype, header and metadata', (t) => {
  const dir = tempDir(t);
  const sd: StateDict = new Map([
    ['f32', { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -7]) }],
    ['f16', { dtype: 'float32', sourceDtype: 'float16', shape: [3], data: Float32Array.from([1, 0.333251953125, -65504]) }],
    ['bf16', { dtype: 'float32', sourceDtype: 'bfloat16', shape: [2], data: Float32Array.from([1, -3.140625]) }],
    ['f64', { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) }],
    ['i64', { dtype: 'int64', shape: [2], data: BigInt64Array.from([-5n, 1n << 40n]) }],
    ['i32', { dtype: 'int32', shape: [1], data: Int32Array.from([-123456]) }],
    ['u8', { dtype: 'uint8', shape: [3], data: Uint8Array.from([0, 7, 255]) }],
    ['mask', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
    ['scalar', { dtype: 'float32', shape: [], data: Float32Array.from([42]) }],
  ]);
  const path = join(dir, 'all.safetensors');
  writeSafetensors(path, sd, { format: 'pt', note: 'x' });
  const header = readSafetensorsHeader(path);
  assert.deepEqual(header.metadata, { format: 'pt', note: 'x' });
  assert.deepEqual(
    header.entries.map((e) => `${e.name}:${e.dtype}`),
    ['f32:float32', 'f16:float16', 'bf16:bfloat16', 'f64:float64', 'i64:int64', 'i32:int32', 'u8:uint8', 'mask:bool', 'scalar:float32'],
  );
  // the data section starts 8-byte aligned and the header length is little-endian
  const bytes = readFileSync(path);
  const hlen = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + hlen) % 8, 0);
  assert.equal(header.entries.find((e) => e.name === 'f16')!.end - header.entries.find((e) => e.name === 'f16')!.begin, 6);
  const back = readSafetensors(path);
  assert.deepEqual(diffStateDicts(back.tensors, sd), []);
  assert.equal(back.tensors.get('f16')!.sourceDtype, 'float16');
  assert.equal(back.tensors.get('bf16')!.sourceDtype, 'bfloat16');
  // a second write gives the same bytes (fp16 narrowed back exactly)
  writeSafetensors(join(dir, 'again.safetensors'), back.tensors, { format: 'pt', note: 'x' });
  assert.deepEqual(readFileSync(join(dir, 'again.safetensors')), bytes);
});

test('safetensors header validation names the file', (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.safetensors');
  writeSafetensors(good, new Map([['w', { dtype: 'float32', shape: [4], data: new Float32Array(4) }]]));
  const bytes = readFileSync(good);
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', bytes.subarray(0, bytes.length - 3), /past the end|truncated/],
    ['tiny', bytes.subarray(0, 5), /shorter than the 8-byte header/],
    ['hugeHeader', (() => { const b = Buffer.from(bytes); b.writeBigUInt64LE(1n << 40n, 0); return b; })(), /invalid safetensors header length/],
    ['badJson', (() => { const b = Buffer.from(bytes); b[9] = 0x7d; return b; })(), /not valid UTF-8 JSON|invalid|needs/],
  ];
  for (const [name, data, re] of cases) {
    const p = join(dir, `${name}.safetensors`);
    writeFileSync(p, data);
    assert.throws(() => readSafetensors(p), (e: Error) => re.test(e.message) && e.message.includes(p), name);
  }
  // offsets that disagree with the shape, and overlapping tensors
  const craft = (header: object, dataLen: number) => {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, Buffer.alloc(dataLen)]);
  };
  const p = join(dir, 'crafted.safetensors');
  writeFileSync(p, craft({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }, 16));
  assert.throws(() => readSafetensors(p), /needs 16 bytes but data_offsets span 8/);
  writeFileSync(p, craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 16));
  assert.throws(() => readSafetensors(p), /overlap/);
  writeFileSync(p, craft({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8));
  assert.throws(() => readSafetensors(p), /unsupported dtype/);
  writeFileSync(p, craft({ a: { dtype: 'F32', shape: [1e6], data_offsets: [0, 4e6] } }, 8));
  assert.throws(() => readSafetensors(p), /past the end/);
});
