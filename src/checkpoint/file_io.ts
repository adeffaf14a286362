// Positioned reads: load just the byte ranges we need, so a multi-GB checkpoint never sits in memory twice.
import { readSync } from 'node:fs';

const CHUNK = 1 << 30; // readSync takes at most 2^31-1 bytes per call

/** Reads exactly `length` bytes at `position` into a fresh buffer; `what` names the file in errors. */
export function readAt(fd: number, position: number, length: number, what: string): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(length));
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(CHUNK, length - done), position + done);
    if (n === 0) throw new Error(`${what}: unexpected end of file at byte ${position + done} (truncated file?)`);
    done += n;
  }
  return out;
}
