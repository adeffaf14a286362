// The zip container of torch.save (PyTorch >= 1.6): reading with positioned reads (zip64 aware) and writing stored,
// 64-byte aligned records like torch does. Untrusted files are checked: entry count, name safety (no '../', absolute
// or duplicate names), records inside the file, compression ratio (zip bombs) and CRC-32.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import type { ByteSink } from './atomic.js';
import { readAt } from './file_io.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;

const MAX_ENTRIES = 1_000_000;
/** Deflate cannot compress better than ~1032:1; anything claiming more is a bomb. */
const MAX_RATIO = 1100;
/** Largest entry we inflate into memory (the pickle); stored tensor records are read directly. */
const MAX_INFLATED = 1 << 30;

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  readonly fileSize: number;
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileSize = fstatSync(this.fd).size;
      this.readCentralDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private fail(msg: string): never {
    throw new Error(`${this.path}: ${msg}`);
  }

  private readCentralDirectory(): void {
    const tailLen = Math.min(this.fileSize, 22 + 0xffff);
    if (tailLen < 22) this.fail('not a zip file (too short)');
    const tailStart = this.fileSize - tailLen;
    const tail = readAt(this.fd, tailStart, tailLen, this.path);
    const tv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--)
      if (tv.getUint32(i, true) === SIG_EOCD) {
        eocd = i;
        break;
      }
    if (eocd < 0) this.fail('no zip end-of-central-directory record (truncated or not a zip file)');
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // zip64: a locator right before the EOCD points at the zip64 EOCD record.
      const loc = eocd - 20;
      if (loc < 0 || tv.getUint32(loc, true) !== SIG_EOCD64_LOCATOR) this.fail('zip64 locator missing (truncated file?)');
      const recOffset = Number(tv.getBigUint64(loc + 8, true));
      if (recOffset + 56 > this.fileSize) this.fail('zip64 end record lies outside the file');
      const rec = new DataView(readAt(this.fd, recOffset, 56, this.path).buffer);
      if (rec.getUint32(0, true) !== SIG_EOCD64) this.fail('bad zip64 end record signature');
      count = Number(rec.getBigUint64(32, true));
      cdSize = Number(rec.getBigUint64(40, true));
      cdOffset = Number(rec.getBigUint64(48, true));
    }
    if (count > MAX_ENTRIES) this.fail(`zip claims ${count} entries (limit ${MAX_ENTRIES})`);
    if (cdOffset + cdSize > this.fileSize) this.fail('zip central directory lies outside the file (truncated?)');
    const cd = readAt(this.fd, cdOffset, cdSize, this.path);
    const v = new DataView(cd.buffer);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || v.getUint32(p, true) !== SIG_CENTRAL) this.fail(`corrupt zip central directory at entry ${i}`);
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      let localHeaderOffset = v.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cdSize) this.fail(`corrupt zip central directory at entry ${i}`);
      const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen));
      // zip64 extra field (id 1) holds the 64-bit values of whichever fields are saturated, in this order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = v.getUint16(e, true);
        const len = v.getUint16(e + 2, true);
        if (id === 1) {
          let q = e + 4;
          const next = () => {
            if (q + 8 > e + 4 + len) this.fail(`bad zip64 extra field for '${name}'`);
            const x = Number(v.getBigUint64(q, true));
            q += 8;
            return x;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + len;
      }
      p += 46 + nameLen + extraLen + commentLen;
      checkEntryName(this.path, name);
      if (this.entries.has(name)) this.fail(`duplicate zip entry '${name}'`);
      if (localHeaderOffset + 30 + compressedSize > cdOffset) this.fail(`zip entry '${name}' lies outside the data area (truncated or corrupt)`);
      if (method === 0 && compressedSize !== size) this.fail(`stored zip entry '${name}' has mismatched sizes`);
      if (method !== 0 && method !== 8) this.fail(`zip entry '${name}' uses compression method ${method} (only stored and deflate are supported)`);
      if (method === 8 && size > MAX_RATIO * Math.max(compressedSize, 1))
        this.fail(`zip entry '${name}' claims ${size} bytes from ${compressedSize} compressed (ratio over ${MAX_RATIO}: zip bomb?)`);
      this.entries.set(name, { name, method, crc, compressedSize, size, localHeaderOffset });
    }
  }

  /** Absolute offset of the entry's data (after its local header). */
  dataOffset(entry: ZipEntry): number {
    const h = new DataView(readAt(this.fd, entry.localHeaderOffset, 30, this.path).buffer);
    if (h.getUint32(0, true) !== SIG_LOCAL) this.fail(`bad local header for zip entry '${entry.name}'`);
    const start = entry.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + entry.compressedSize > this.fileSize) this.fail(`zip entry '${entry.name}' runs past the end of the file (truncated?)`);
    return start;
  }

  /** The entry's bytes, inflated if needed and CRC-checked. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) this.fail(`no zip entry '${name}'`);
    const raw = readAt(this.fd, this.dataOffset(entry), entry.compressedSize, this.path);
    let out = raw;
    if (entry.method === 8) {
      if (entry.size > MAX_INFLATED) this.fail(`zip entry '${name}' is too large to inflate (${entry.size} bytes)`);
      try {
        out = new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) }));
      } catch (e) {
        this.fail(`zip entry '${name}' does not inflate to its declared ${entry.size} bytes (${(e as Error).message})`);
      }
      if (out.byteLength !== entry.size) this.fail(`zip entry '${name}' inflates to ${out.byteLength} bytes, not the declared ${entry.size}`);
    }
    if (crc32(out) >>> 0 !== entry.crc) this.fail(`CRC-32 mismatch in zip entry '${name}' (corrupt file)`);
    return out;
  }
}

function checkEntryName(path: string, name: string): void {
  if (name.length === 0 || name.startsWith('/') || name.includes('\\') || /^[A-Za-z]:/.test(name) || name.includes('\0'))
    throw new Error(`${path}: unsafe zip entry name '${name}'`);
  if (name.split('/').some((s) => s === '..')) throw new Error(`${path}: zip entry name '${name}' escapes the archive ('..' path traversal)`);
}

/** One record to write: name and bytes (written stored, uncompressed). */
export interface ZipRecord {
  name: string;
  data: Uint8Array;
}

/**
 * Writes a stored zip like torch.save: each record's data starts on a 64-byte boundary (padding goes into an extra
 * field with id 'FB', as torch does), with zip64 structures when the archive passes 4 GiB.
 */
export function writeZip(sink: ByteSink, records: Iterable<ZipRecord>): void {
  const central: Uint8Array[] = [];
  let count = 0;
  const enc = new TextEncoder();
  for (const r of records) {
    if (r.data.byteLength >= 0xffffffff) throw new Error(`zip record '${r.name}' is over 4 GiB; split the tensor`);
    const name = enc.encode(r.name);
    const offset = sink.position;
    const crc = crc32(r.data) >>> 0;
    const headerEnd = offset + 30 + name.byteLength + 4;
    const pad = (64 - (headerEnd % 64)) % 64;
    const local = new Uint8Array(30 + name.byteLength + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, SIG_LOCAL, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint32(14, crc, true);
    lv.setUint32(18, r.data.byteLength, true);
    lv.setUint32(22, r.data.byteLength, true);
    lv.setUint16(26, name.byteLength, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.byteLength, 0x4246, true); // 'FB'
    lv.setUint16(32 + name.byteLength, pad, true);
    sink.write(local);
    sink.write(r.data);

    const big = offset >= 0xffffffff;
    const c = new Uint8Array(46 + name.byteLength + (big ? 12 : 0));
    const cv = new DataView(c.buffer);
    cv.setUint32(0, SIG_CENTRAL, true);
    cv.setUint16(4, big ? 45 : 20, true); // version made by
    cv.setUint16(6, big ? 45 : 20, true); // version needed
    cv.setUint32(16, crc, true);
    cv.setUint32(20, r.data.byteLength, true);
    cv.setUint32(24, r.data.byteLength, true);
    cv.setUint16(28, name.byteLength, true);
    cv.setUint16(30, big ? 12 : 0, true);
    cv.setUint32(42, big ? 0xffffffff : offset, true);
    c.set(name, 46);
    if (big) {
      cv.setUint16(46 + name.byteLength, 1, true);
      cv.setUint16(48 + name.byteLength, 8, true);
      cv.setBigUint64(50 + name.byteLength, BigInt(offset), true);
    }
    central.push(c);
    count++;
  }
  const cdOffset = sink.position;
  let cdSize = 0;
  for (const c of central) {
    sink.write(c);
    cdSize += c.byteLength;
  }
  const zip64 = count >= 0xffff || cdOffset >= 0xffffffff || cdSize >= 0xffffffff;
  if (zip64) {
    const recOffset = sink.position;
    const rec = new DataView(new ArrayBuffer(56 + 20));
    rec.setUint32(0, SIG_EOCD64, true);
    rec.setBigUint64(4, 44n, true);
    rec.setUint16(12, 45, true);
    rec.setUint16(14, 45, true);
    rec.setBigUint64(24, BigInt(count), true);
    rec.setBigUint64(32, BigInt(count), true);
    rec.setBigUint64(40, BigInt(cdSize), true);
    rec.setBigUint64(48, BigInt(cdOffset), true);
    rec.setUint32(56, SIG_EOCD64_LOCATOR, true);
    rec.setBigUint64(64, BigInt(recOffset), true);
    rec.setUint32(72, 1, true);
    sink.write(new Uint8Array(rec.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, SIG_EOCD, true);
  end.setUint16(8, Math.min(count, 0xffff), true);
  end.setUint16(10, Math.min(count, 0xffff), true);
  end.setUint32(12, Math.min(cdSize, 0xffffffff), true);
  end.setUint32(16, Math.min(cdOffset, 0xffffffff), true);
  sink.write(new Uint8Array(end.buffer));
}
