// Atomic file writes: write a temp file in the target's folder, fsync it, then rename over the target, so a crash
// never leaves a half-written checkpoint under the real name.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Sequential writer handed to the callback of `writeFileAtomic`. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
  /** Bytes written so far. */
  readonly position: number;
}

export function writeFileAtomic(path: string, fill: (sink: ByteSink) => void): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    let position = 0;
    const sink: ByteSink = {
      write(bytes) {
        let done = 0;
        while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
        position += bytes.byteLength;
      },
      get position() {
        return position;
      },
    };
    fill(sink);
    fsyncSync(fd);
    ok = true;
  } catch (e) {
    throw diskError(e, path);
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
  // fsync the folder so the rename itself survives a crash (not supported everywhere; best effort).
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* folders cannot be opened for fsync on some platforms */
  }
}

/** A full disk or quota gets a message naming the file and saying that its previous version is intact. */
function diskError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  return new Error(`${path}: the disk is full (${code}) while writing it; nothing was replaced (the previous version, if any, is intact). Free some space and run again (a training run: add --resume).`);
}
