// The conformance runner over the shared fixture folder (or DINOTS_FIXTURES): every fixture must pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/select.js';
import { formatResults, runFixtures } from '../../src/conformance/runner.js';

const root = new URL('../..', import.meta.url).pathname;
const dir = process.env.DINOTS_FIXTURES ?? join(root, '..', 'shared', 'conformance', 'fixtures');

test('conformance fixtures', { skip: !existsSync(join(dir, 'manifest.json')) && `no fixtures at ${dir}` }, async (t) => {
  await initBackend((process.env.DINOTS_BACKEND as 'cpu') ?? 'cpu');
  const results = await runFixtures(dir);
  for (const r of results) {
    await t.test(r.fixture, { skip: r.status === 'not-covered' && `kind '${r.kind}' not implemented yet` }, () => {
      assert.ok(r.status === 'pass', formatResults([r]));
    });
  }
});
