// Atomic writes (src/checkpoint/atomic.ts): a write that fails, a full disk included, replaces nothing and leaves no
// temp file; a full disk is named as such with the way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/checkpoint/atomic.js';
import { tempDir } from './helpers.js';

test('a full disk during an atomic write keeps the previous file whole and says what to do', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'checkpoint.safetensors');
  writeFileSync(path, 'previous version');
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.throws(
    () => writeFileAtomic(path, (sink) => {
      sink.write(new Uint8Array(1000));
      throw enospc; // what writeSync throws when the disk fills mid-file
    }),
    /checkpoint\.safetensors: the disk is full \(ENOSPC\) while writing it; nothing was replaced .*Free some space and run again \(a training run: add --resume\)/,
  );
  assert.equal(readFileSync(path, 'utf8'), 'previous version');
  assert.deepEqual(readdirSync(dir), ['checkpoint.safetensors'], 'no temp file left behind');
  // Any other error passes through unchanged.
  assert.throws(() => writeFileAtomic(path, () => { throw new Error('boom'); }), /^Error: boom$/);
  assert.deepEqual(readdirSync(dir), ['checkpoint.safetensors']);
});
