#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's built-in test runner (through tsx).
// Usage: node scripts/run-tests.mjs [filter...]  — filters keep files whose path contains any of them.
// --expose-gc: the leak tests call gc() before they read RSS (without it, lazy GC makes RSS growth flaky).
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'test'))
  .map((p) => relative(root, p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--test', ...files], { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
