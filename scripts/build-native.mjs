#!/usr/bin/env node
// Builds the native TF.js backend addon (native/) with node-gyp against the system Node headers (/usr/include/node),
// so no download is needed. `--optional` (used by `npm ci`): a missing compiler or library is a warning, not a failure.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const optional = process.argv.includes('--optional');
const root = new URL('..', import.meta.url).pathname;
const nativeDir = join(root, 'native');

function fail(msg) {
  if (optional) {
    console.warn(`dinots: native backend not built (${msg}). The wasm/cpu backends will be used; build later with: npm run build:native`);
    process.exit(0);
  }
  console.error(`dinots: native build failed: ${msg}`);
  process.exit(1);
}

if (!existsSync(join(nativeDir, 'binding.gyp'))) fail('native/binding.gyp not found');
if (!existsSync('/usr/include/dnnl.hpp') && !existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) {
  fail('oneDNN headers missing: apt-get install libdnnl-dev');
}

// node-gyp ships inside npm; find it next to the npm that runs us, else on PATH.
let gyp = null;
const npmCli = process.env.npm_execpath;
const candidates = [
  npmCli && join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
].filter(Boolean);
for (const c of candidates) if (existsSync(c)) { gyp = c; break; }
if (!gyp) {
  try { gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'); } catch { /* none */ }
}
const nodedir = existsSync('/usr/include/node/node.h') ? '/usr' : undefined;
const args = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : []), '-j', 'max'];
const r = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { cwd: nativeDir, stdio: 'inherit' })
  : spawnSync('node-gyp', args, { cwd: nativeDir, stdio: 'inherit' });
if (r.status !== 0) fail(`node-gyp exited with ${r.status ?? r.error?.message}`);
console.log('dinots: native backend built');
