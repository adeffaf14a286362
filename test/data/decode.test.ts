// Decoding odd formats to RGB uint8 HWC: made with sharp (or by hand for 16-bit) in a temporary folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, isImagePath } from '../../src/data/decode.js';
import { png16, tempDir } from './helpers.js';

const px = (img: { data: Uint8Array; width: number }, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('grayscale PNG -> R = G = B', async () => {
  const gray = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
  const buf = await sharp(gray, { raw: { width: 4, height: 3, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(buf).metadata()).channels, 1);
  const img = await decodeImage(buf);
  assert.deepEqual([img.width, img.height, img.data.length], [4, 3, 36]);
  assert.deepEqual(px(img, 1, 2), [180, 180, 180]); // index 9 -> 9 * 20
});

test('RGBA PNG: alpha is dropped, colour kept (like PIL convert("RGB"))', async () => {
  const rgba = Uint8Array.from([10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255]);
  const buf = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer();
  assert.equal((await sharp(buf).metadata()).hasAlpha, true);
  const img = await decodeImage(buf);
  assert.deepEqual(Array.from(img.data), [10, 20, 30, 200, 100, 50, 1, 2, 3]);
});

test('16-bit PNG (RGB and gray) -> 8-bit high byte', async () => {
  const rgb = await decodeImage(png16(2, 1, 3, [0x80ff, 0x8000, 0xffff, 0x0101, 0x7f80, 0x00ff]));
  assert.deepEqual(Array.from(rgb.data), [0x80, 0x80, 0xff, 0x01, 0x7f, 0x00]);
  const gray = await decodeImage(png16(2, 1, 1, [0x1234, 0xfe00]));
  assert.deepEqual(Array.from(gray.data), [0x12, 0x12, 0x12, 0xfe, 0xfe, 0xfe]);
});

test('palette PNG -> its colours', async () => {
  const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 250]];
  const raw = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => colours[(Math.floor(i / 3) >> 3) % 4]![i % 3]!);
  const buf = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toBuffer();
  assert.equal((await sharp(buf).metadata()).isPalette, true);
  const img = await decodeImage(buf);
  for (let y = 0; y < 8; y++) {
    const want = colours[y % 4]!;
    px(img, 3, y).forEach((v, c) => assert.ok(Math.abs(v - want[c]!) <= 2, `row ${y}: ${px(img, 3, y)} vs ${want}`));
  }
});

test('CMYK JPEG -> sRGB close to the original colour (not inverted)', async () => {
  const raw = new Uint8Array(16 * 16 * 3);
  for (let i = 0; i < raw.length; i += 3) raw.set([200, 120, 40], i);
  const buf = await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
  const meta = await sharp(buf).metadata();
  assert.equal(meta.space, 'cmyk');
  assert.equal(meta.channels, 4);
  const img = await decodeImage(buf);
  px(img, 8, 8).forEach((v, c) => assert.ok(Math.abs(v - [200, 120, 40][c]!) <= 30, `got ${px(img, 8, 8)}`));
});

test('EXIF orientation 6 is applied: a 32x16 stored image becomes 16x32, its left half on top', async () => {
  const raw = new Uint8Array(32 * 16 * 3);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 32; x++) raw.set(x < 16 ? [255, 0, 0] : [0, 0, 255], (y * 32 + x) * 3);
  const buf = await sharp(raw, { raw: { width: 32, height: 16, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(buf).metadata()).orientation, 6);
  const img = await decodeImage(buf);
  assert.deepEqual([img.width, img.height], [16, 32]);
  const top = px(img, 8, 4);
  const bottom = px(img, 8, 27);
  assert.ok(top[0]! > 200 && top[2]! < 50, `top ${top}`);
  assert.ok(bottom[2]! > 200 && bottom[0]! < 50, `bottom ${bottom}`);
});

test('maxSide downsizes on decode, keeping the aspect', async () => {
  const buf = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer();
  const img = await decodeImage(buf, { maxSide: 100 });
  assert.equal(img.width, 100);
  assert.ok(Math.abs(img.height - 67) <= 1);
  assert.deepEqual(px(img, 50, 30), [9, 99, 199]);
  const small = await decodeImage(buf, { maxSide: 1000 });
  assert.deepEqual([small.width, small.height], [300, 200]);
});

test('errors name the file: truncated, empty, not an image', async (t) => {
  const dir = tempDir(t);
  const jpg = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'red' } }).jpeg().toBuffer();
  const cases: [string, Uint8Array][] = [
    ['truncated.jpg', jpg.subarray(0, jpg.length >> 1)],
    ['empty.png', new Uint8Array(0)],
    ['notes.jpg', Buffer.from('not an image at all')],
  ];
  for (const [name, bytes] of cases) {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    await assert.rejects(decodeImage(p), (e: Error) => e.message.includes(p), name);
  }
  await assert.rejects(decodeImage(new Uint8Array(0), { name: 'blob-7' }), /blob-7/);
  assert.ok(isImagePath('a/B.JPEG') && isImagePath('x.webp') && !isImagePath('x.txt') && !isImagePath('jpg'));
});
