// Curation benchmark: time and peak memory (RSS) of the dedup k-NN graph and k-means on synthetic clustered unit
// vectors (dim 384). Each size runs in its own child process so its peak RSS is its own.
//   npx tsx bench/curation.ts [--sizes 10000,100000] [--dim 384] [--k 16] [--clusters 256] [--iters 10]
//                             [--index auto|exact|ann] [--backend wasm] [--ann-quant f32|f16|i8] [--ann-m 16] [--ann-ef 128]
//                             [--no-knn]  (k-means only, e.g. for 1M vectors)
//   npx tsx bench/curation.ts --quality [--model pixels|CKPT|NAME]
//     dedup precision/recall on planted near-copies of MNIST digits and photo crops (per augmentation, per threshold),
//     and the in-distribution share of retrieval-curated sets against a random selection of the same size.
// --index auto: exact blocked search up to 10k vectors, usearch HNSW above: exact all-pairs costs 2*n^2*d FLOP
// (7.7e12 at 100k, 7.7e14 at 1M), too much for this 2-core machine; the pipeline's own auto switch is at 1M.
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
  quality: boolean;
  model: string;
  annQuant: 'f32' | 'f16' | 'i8';
  annM: number;
  annEf: number;
  knn: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sizes: [10_000, 100_000], dim: 384, k: 16, clusters: 256, iters: 10, index: 'auto', backend: 'auto', quality: false, model: 'pixels', annQuant: 'f32', annM: 16, annEf: 128, knn: true };
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
      case '--quality': a.quality = true; break;
      case '--model': a.model = v!; i++; break;
      case '--ann-quant': a.annQuant = v as Args['annQuant']; i++; break;
      case '--ann-m': a.annM = Number(v); i++; break;
      case '--ann-ef': a.annEf = Number(v); i++; break;
      case '--no-knn': a.knn = false; break;
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
  /** null when the k-NN graph was not run. */
  precision: number | null;
  recall: number | null;
  kmeansS: number;
  kmeansIters: number;
  peakRssMB: number;
}

/** One size in this process; prints a JSON row. */
async function runOne(a: Args, n: number): Promise<Row> {
  const { initBackend } = await import('../src/backend/select.js');
  const { clusteredVectors, plantDuplicates, pairScores } = await import('../src/curation/synthetic.js');
  const { deduplicate } = await import('../src/curation/dedup.js');
  const { kmeans } = await import('../src/curation/kmeans.js');
  const backend = await initBackend(a.backend as 'auto');
  let t = performance.now();
  // 1 cluster per 100 vectors (at least 10), spread so that in-cluster cosines are ~0.75 (below the 0.95 threshold),
  // plus 1% planted near-copies (cosine ~0.995 to their source) that the k-NN graph must find.
  const copies = Math.round(n / 100);
  const base = clusteredVectors(n - copies, a.dim, Math.max(10, Math.round(n / 100)), 0.6, 1).x;
  const { x, pairs } = plantDuplicates(base, copies, 0.1, 2);
  const genS = (performance.now() - t) / 1000;
  const index = a.index === 'auto' ? (n > 10_000 ? 'ann' : 'exact') : a.index;
  t = performance.now();
  let shown = 0;
  const dd = !a.knn ? null : deduplicate(x, {
    k: a.k,
    threshold: 0.95,
    index,
    ann: { quantization: a.annQuant, connectivity: a.annM, expansionAdd: a.annEf, expansionSearch: a.annEf },
    onProgress: (done, total) => {
      const f = done / total;
      if (f - shown >= 0.1 || f === 1) {
        shown = f;
        process.stderr.write(`n=${n}: k-NN ${(f * 100).toFixed(0)}% after ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
      }
    },
  });
  const knnS = (performance.now() - t) / 1000;
  const pr = dd ? pairScores(dd.component, pairs, n) : { precision: null, recall: null };
  t = performance.now();
  const km = await kmeans(x, { k: Math.min(a.clusters, n), iters: a.iters, seed: 0, tol: 0 });
  const kmeansS = (performance.now() - t) / 1000;
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  const indexName = !a.knn ? 'not run' : index === 'ann' ? `ann ${a.annQuant} M=${a.annM} ef=${a.annEf}` : index;
  return { n, backend, index: indexName, genS, knnS, groups: dd?.groups.length ?? -1, precision: pr.precision, recall: pr.recall, kmeansS, kmeansIters: km.iterations, peakRssMB };
}

/** Dedup precision/recall and retrieval in-distribution share on real images (see header). */
async function quality(a: Args): Promise<void> {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { initBackend } = await import('../src/backend/select.js');
  const { buildPlantedPool, buildRetrievalPool, AUGMENTATIONS } = await import('../test/curation/image_pool.js');
  const { pixelEmbedder, modelEmbedder } = await import('../src/curation/embed.js');
  const { deduplicate } = await import('../src/curation/dedup.js');
  const { l2NormalizeRows } = await import('../src/util/matrix.js');
  const { pairScores } = await import('../src/curation/synthetic.js');
  const { kmeans } = await import('../src/curation/kmeans.js');
  const { retrieveBySamples, retrieveByClusters, mergeRetrieved, randomSelection } = await import('../src/curation/retrieve.js');
  const backend = await initBackend(a.backend as 'auto');
  const dir = mkdtempSync(join(tmpdir(), 'dinots-curation-quality-'));
  const embedder = a.model === 'pixels' ? pixelEmbedder() : (await modelEmbedder(a.model, { batchSize: 32 })).embedder;

  const pool = await buildPlantedPool(join(dir, 'planted'), { digits: 150, photos: 50, copies: 60, seed: 0 });
  const e = await embedder(pool.dir, 'pool');
  const x = l2NormalizeRows(e.embeddings);
  const row = new Map(e.paths.map((p, i) => [p, i]));
  const pairs = pool.pairs.map(([p, q]) => [row.get(p)!, row.get(q)!] as [number, number]);
  const out: string[] = [`model ${a.model}, backend ${backend}; pool ${x.rows} images (150 MNIST digits, 50 photo crops, 60 planted copies)`, ''];
  out.push(`| threshold | precision | recall | ${AUGMENTATIONS.map((g) => `recall ${g}`).join(' | ')} |`, `|---|---|---|${AUGMENTATIONS.map(() => '---').join('|')}|`);
  for (const th of [0.8, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99]) {
    const dd = deduplicate(x, { threshold: th, k: 16 });
    const sc = pairScores(dd.component, pairs, x.rows);
    const per = AUGMENTATIONS.map((g) => {
      const ps = pairs.filter((_, i) => pool.pairs[i]![1].includes(`_${g}.`));
      return `${ps.filter(([p, q]) => dd.component[p] === dd.component[q]).length}/${ps.length}`;
    });
    out.push(`| ${th} | ${sc.precision.toFixed(3)} | ${sc.recall.toFixed(3)} | ${per.join(' | ')} |`);
  }

  const ret = await buildRetrievalPool(join(dir, 'ret'), { inDist: 200, photos: 100, noise: 100, seeds: 40, seed: 1 });
  const P = await embedder(ret.pool, 'pool');
  const S = await embedder(ret.seed, 'seed');
  const px = l2NormalizeRows(P.embeddings);
  const sx = l2NormalizeRows(S.embeddings);
  const share = (rows: number[]) => rows.filter((r) => ret.inDistribution(P.paths[r]!)).length / rows.length;
  const budget = 100;
  const km = await kmeans(px, { k: 20, seed: 0 });
  const bySamples = await retrieveBySamples(px, sx, { budget });
  const byClusters = await retrieveByClusters(px, sx, { assignments: km.assignments, centroids: km.centroids, budget });
  const both = mergeRetrieved(bySamples, byClusters, budget);
  out.push('', `retrieval: pool ${px.rows} (200 MNIST digits = in-distribution, 100 photo crops, 100 noise), 40 seed digits, budget ${budget}`, '');
  out.push('| selection | size | in-distribution share |', '|---|---|---|');
  out.push(`| sample-based (k-NN of seeds) | ${bySamples.index.length} | ${share(bySamples.index).toFixed(3)} |`);
  out.push(`| cluster-based (k=20 clusters) | ${byClusters.index.length} | ${share(byClusters.index).toFixed(3)} |`);
  out.push(`| both (merged) | ${both.index.length} | ${share(both.index).toFixed(3)} |`);
  for (const seed of [0, 1, 2]) {
    const r = randomSelection(px.rows, budget, seed);
    out.push(`| random (seed ${seed}) | ${r.length} | ${share(r).toFixed(3)} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  if (a.quality) return quality(a);
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
    process.stderr.write(`${JSON.stringify(row)}\n`);
    process.stderr.write(`done n=${n}\n`);
  }
  const head = `| vectors (d=${a.dim}, 1% planted copies) | backend | k-NN graph (k=${a.k}) | planted copies found (P / R) | k-means (k=${a.clusters}, ${a.iters} it) | peak RSS |`;
  const lines = [head, '|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.n.toLocaleString('en')} | ${r.backend} | ${r.index === 'not run' ? 'not run' : `${r.knnS.toFixed(1)} s (${r.index})`} | ${r.precision === null ? '-' : `${r.precision.toFixed(3)} / ${r.recall!.toFixed(3)}`} | ${r.kmeansS.toFixed(1)} s (${r.kmeansIters} it) | ${r.peakRssMB.toFixed(0)} MB |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
