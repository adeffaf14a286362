// Curation benchmark: time and peak memory (RSS) of the dedup k-NN graph and k-means on synthetic clustered unit
// vectors (dim 384). Each size runs in its own child process so its peak RSS is its own.
//   npx tsx bench/curation.ts [--sizes 10000,100000] [--dim 384] [--k 16] [--clusters 256] [--iters 10]
//                             [--index auto|exact|ann] [--backend wasm]
// --index auto: exact blocked search up to 100k vectors, usearch HNSW above (exact at 1M is ~1.5e13 FLOP).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Args {
  sizes: number[];
  dim: number;
  k: number;
  clusters: number;
  iters: number;
  index: 'auto' | 'exact' | 'ann';
  backend: string;
  one?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sizes: [10_000, 100_000], dim: 384, k: 16, clusters: 256, iters: 10, index: 'auto', backend: 'auto' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--sizes': a.sizes = v!.split(',').map(Number); i++; break;
      case '--dim': a.dim = Number(v); i++; break;
      case '--k': a.k = Number(v); i++; break;
      case '--clusters': a.clusters = Number(v); i++; break;
      case '--iters': a.iters = Number(v); i++; break;
      case '--index': a.index = v as Args['index']; i++; break;
      case '--backend': a.backend = v!; i++; break;
      case '--one': a.one = Number(v); i++; break;
      default: throw new Error(`bench curation: unknown argument '${argv[i]}' (see the header of bench/curation.ts)`);
    }
  }
  if (a.sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--sizes: comma-separated integers >= 2, e.g. 10000,100000');
  return a;
}

interface Row {
  n: number;
  backend: string;
  index: string;
  genS: number;
  knnS: number;
  groups: number;
  kmeansS: number;
  kmeansIters: number;
  peakRssMB: number;
}

/** One size in this process; prints a JSON row. */
async function runOne(a: Args, n: number): Promise<Row> {
  const { initBackend } = await import('../src/backend/select.js');
  const { clusteredVectors } = await import('../src/curation/synthetic.js');
  const { deduplicate } = await import('../src/curation/dedup.js');
  const { kmeans } = await import('../src/curation/kmeans.js');
  const backend = await initBackend(a.backend as 'auto');
  let t = performance.now();
  // 1 cluster per 100 vectors (at least 10), spread so that near neighbours exist but few pairs pass 0.95.
  const { x } = clusteredVectors(n, a.dim, Math.max(10, Math.round(n / 100)), 0.6, 1);
  const genS = (performance.now() - t) / 1000;
  const index = a.index === 'auto' ? (n > 100_000 ? 'ann' : 'exact') : a.index;
  t = performance.now();
  const dd = await deduplicate(x, { k: a.k, threshold: 0.95, index });
  const knnS = (performance.now() - t) / 1000;
  t = performance.now();
  const km = await kmeans(x, { k: Math.min(a.clusters, n), iters: a.iters, seed: 0, tol: 0 });
  const kmeansS = (performance.now() - t) / 1000;
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  return { n, backend, index, genS, knnS, groups: dd.groups.length, kmeansS, kmeansIters: km.iterations, peakRssMB };
}

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  if (a.one !== undefined) {
    process.stdout.write(`${JSON.stringify(await runOne(a, a.one))}\n`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const rows: Row[] = [];
  for (const n of a.sizes) {
    const args = [...argv.filter((_, i) => argv[i] !== '--sizes' && argv[i - 1] !== '--sizes'), '--one', String(n)];
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench curation: size ${n} failed (exit ${r.status})`);
    const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as Row;
    rows.push(row);
    process.stderr.write(`done n=${n}\n`);
  }
  const head = `| vectors (d=${a.dim}) | backend | k-NN graph (k=${a.k}) | dup groups | k-means (k=${a.clusters}, ${a.iters} it) | peak RSS |`;
  const lines = [head, '|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.n.toLocaleString('en')} | ${r.backend} | ${r.knnS.toFixed(1)} s (${r.index}) | ${r.groups} | ${r.kmeansS.toFixed(1)} s (${r.kmeansIters} it) | ${r.peakRssMB.toFixed(0)} MB |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
