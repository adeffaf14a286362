// One process per run folder: `run.lock` holds the owner's pid and host while a run trains, so a second
// `dinots train --out` (or --resume) on the same folder stops with the owner's pid instead of both writing
// checkpoints. A lock left by a process that is gone (kill -9, power loss) is taken over with a note.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'run.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/**
 * Takes the run folder `out` (created when `create`; a missing folder is left to the caller's own error otherwise);
 * returns the release function. Throws while another process holds it.
 */
export function acquireRunLock(out: string, log: (line: string) => void, create: boolean): () => void {
  if (!create && !existsSync(out)) return () => {};
  mkdirSync(out, { recursive: true });
  const path = join(out, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const take = () => writeFileSync(path, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
  try {
    take();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    let owner: LockInfo | null = null;
    try {
      owner = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      // unreadable or half-written: treated as stale below
    }
    if (owner && owner.host !== mine.host) {
      throw new Error(`${out} is locked by process ${owner.pid} on ${owner.host} since ${owner.started} (${path}); delete ${LOCK_FILE} if that run is over`);
    }
    if (owner && alive(owner.pid)) {
      throw new Error(`${out} is being trained by process ${owner.pid} since ${owner.started} (${path}): wait for it, stop it, or choose another --out`);
    }
    log(`${path}: taking over the lock of process ${owner?.pid ?? '?'}, which is gone`);
    rmSync(path, { force: true });
    take(); // a process that took it meanwhile makes this throw EEXIST
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    rmSync(path, { force: true });
  };
  process.on('exit', release);
  return release;
}
