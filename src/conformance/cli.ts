// npm run conformance -- <fixture-dir> [out-dir] [--only PREFIX ...] [--backend cpu|wasm|native] [--verbose]
import { initBackend, type BackendName } from '../backend/select.js';
import { formatResults, runFixtures } from './runner.js';

const args = process.argv.slice(2);
const only: string[] = [];
const pos: string[] = [];
let backend: BackendName | 'auto' = 'auto';
let verbose = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--only') only.push(args[++i]!);
  else if (a === '--backend') backend = args[++i] as BackendName;
  else if (a === '--verbose' || a === '-v') verbose = true;
  else pos.push(a);
}
if (pos.length < 1) {
  console.error('usage: npm run conformance -- <fixture-dir> [out-dir] [--only PREFIX ...] [--backend cpu|wasm|native] [--verbose]');
  process.exit(2);
}
const used = await initBackend(backend);
const results = await runFixtures(pos[0]!, { outDir: pos[1], only: only.length ? only : undefined });
console.log(formatResults(results, verbose));
const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
const nc = results.filter((r) => r.status === 'not-covered');
console.log(`\nbackend ${used}: ${results.length - bad.length - nc.length} passed, ${bad.length} failed, ${nc.length} not covered`);
process.exit(bad.length ? 1 : 0);
