// Small helpers shared by the data tests: temporary folders, a hand-written 16-bit PNG encoder (sharp cannot write
// arbitrary 16-bit values), and synthetic images.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import type { RgbImage } from '../../src/data/image.js';

export function tempDir(t: { after(fn: () => void): void }, prefix = 'dinots-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A 16-bit PNG (RGB when channels = 3, gray when 1) holding exactly `values` (row-major, channel-interleaved). */
export function png16(width: number, height: number, channels: 1 | 3, values: number[]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16;
  ihdr[9] = channels === 3 ? 2 : 0;
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * channels * 2); // filter byte 0
    for (let i = 0; i < width * channels; i++) row.writeUInt16BE(values[y * width * channels + i]!, 1 + 2 * i);
    rows.push(row);
  }
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

/** A smooth, photo-like RGB image (gradients, a disc and some texture) of the given size. */
export function photoLike(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const d = Math.hypot(x - width * 0.6, y - height * 0.4) < Math.min(width, height) * 0.25 ? 60 : 0;
      data[o] = Math.min(255, (x * 200) / width + d + 20 * Math.sin(x * 0.3) * Math.cos(y * 0.2) + 20);
      data[o + 1] = Math.min(255, (y * 180) / height + 30 + 15 * Math.sin((x + y) * 0.15));
      data[o + 2] = Math.min(255, 128 + 90 * Math.sin(x * 0.02 + y * 0.03) - d);
    }
  }
  return { data, width, height };
}
