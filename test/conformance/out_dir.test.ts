// The runner's out-dir holds one complete candidate set (what compare.py checks) plus every named variant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/select.js';
import { readManifest } from '../../src/conformance/manifest.js';
import { runFixtures } from '../../src/conformance/runner.js';

const root = new URL('../..', import.meta.url).pathname;
const dir = process.env.DINOTS_FIXTURES ?? join(root, '..', 'shared', 'conformance', 'fixtures');

test('out-dir covers every reference output, top level and per checkpoint variant', { skip: !existsSync(join(dir, 'manifest.json')) && `no fixtures at ${dir}` }, async () => {
  await initBackend('cpu');
  const ref = readManifest(dir);
  const name = Object.keys(ref.fixtures).find((f) => ref.fixtures[f]!.kind === 'head');
  assert.ok(name, 'the fixture folder has a head fixture');
  const out = mkdtempSync(join(tmpdir(), 'dinots-conf-'));
  try {
    const [r] = await runFixtures(dir, { outDir: out, only: [name] });
    assert.equal(r!.status, 'pass');
    const expected = ref.fixtures[name]!.tensors.filter((t) => ['output', 'stat'].includes(ref.tensors[t]!.role ?? ''));
    const top = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { tensors: Record<string, unknown> };
    assert.deepEqual(Object.keys(top.tensors).sort(), [...expected].sort());
    for (const ckpt of Object.keys(ref.fixtures[name]!.checkpoints ?? {})) {
      const v = JSON.parse(readFileSync(join(out, 'variants', ckpt, 'manifest.json'), 'utf8')) as { tensors: Record<string, unknown> };
      assert.deepEqual(Object.keys(v.tensors).sort(), [...expected].sort(), `variant ${ckpt}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
