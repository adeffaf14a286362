// End to end on real images (MNIST digits, photo crops, planted copies) with the 16x16 thumbnail embedding, which
// needs no trained weights: dedup precision/recall, in-distribution retrieval, resumable steps, report, CLI.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../../src/backend/select.js';
import { runCuration } from '../../src/curation/pipeline.js';
import { pixelEmbedder } from '../../src/curation/embed.js';
import { readTable } from '../../src/curation/tables.js';
import { randomSelection } from '../../src/curation/retrieve.js';
import { PIXEL_DEDUP_THRESHOLD } from '../../src/curation/dedup.js';
import { pairScores } from '../../src/curation/synthetic.js';
import { buildPlantedPool, buildRetrievalPool } from './image_pool.js';

const root = mkdtempSync(join(tmpdir(), 'dinots-curate-'));
before(async () => {
  await initBackend('cpu');
});

test('dedup on planted copies of real images: every resize/JPEG/colour copy found, precision >= 0.9', async () => {
  const pool = await buildPlantedPool(join(root, 'planted'), { digits: 40, photos: 16, copies: 24, seed: 3 });
  const work = join(root, 'w-dedup');
  await runCuration({ work, steps: ['embed', 'dedup'], pool: pool.dir, embedder: pixelEmbedder(), modelId: 'pixels16', dedupThreshold: PIXEL_DEDUP_THRESHOLD });
  const t = readTable(join(work, 'dedup.arrow'));
  const paths = t.strings('path');
  const group = t.int32('group');
  const row = new Map(paths.map((p, i) => [p, i]));
  // Component label per row: group id, or a unique negative id for singletons.
  const component = Int32Array.from(group, (g, i) => (g >= 0 ? g : -1 - i));
  const offset = Int32Array.from(component, (c) => c + paths.length); // pairScores wants labels >= 0
  const editable = pool.pairs.filter(([, copy]) => !copy.includes('_crop.'));
  const all = pairScores(offset, pool.pairs.map(([a, b]) => [row.get(a)!, row.get(b)!]), paths.length);
  const nonCrop = editable.filter(([a, b]) => component[row.get(a)!] === component[row.get(b)!]).length;
  assert.equal(nonCrop, editable.length, 'a resize/JPEG/colour copy was missed');
  assert.ok(all.precision >= 0.9, `precision ${all.precision}`);
  // Status column: exactly one 'kept' per group.
  const status = t.strings('status');
  const kept = new Map<number, number>();
  group.forEach((g, i) => g >= 0 && status[i] === 'kept' && kept.set(g, (kept.get(g) ?? 0) + 1));
  assert.ok([...kept.values()].every((v) => v === 1));
});

test('retrieval picks in-distribution images; steps resume; report and stats are written', async () => {
  const data = await buildRetrievalPool(join(root, 'ret'), { inDist: 40, photos: 20, noise: 20, seeds: 10, seed: 5 });
  const work = join(root, 'w-ret');
  const base = { work, pool: data.pool, seed: data.seed, embedder: pixelEmbedder(), modelId: 'pixels16', budget: 30, clusters: [8] };
  const first = await runCuration({ ...base, steps: ['embed', 'dedup', 'cluster', 'retrieve', 'report'], mode: 'samples' });
  assert.deepEqual(first.ran, ['embed', 'dedup', 'cluster', 'retrieve', 'report']);
  const cur = readTable(join(work, 'curated.arrow'));
  const picked = cur.strings('path');
  assert.equal(picked.length, 30);
  const share = picked.filter(data.inDistribution).length / picked.length;
  const poolPaths = readTable(join(work, 'pool.arrow')).strings('path');
  const random = randomSelection(poolPaths.length, 30, 0).map((i) => poolPaths[i]!);
  const randomShare = random.filter(data.inDistribution).length / random.length;
  assert.equal(share, 1, `curated in-distribution share ${share}`);
  assert.ok(randomShare < 0.7, `random share ${randomShare}`);
  assert.ok(existsSync(join(work, 'report', 'index.html')));
  const stats = JSON.parse(readFileSync(join(work, 'stats.json'), 'utf8'));
  assert.equal(stats.curated, 30);
  assert.equal(stats.steps.embed.pool, 80);
  assert.ok(readFileSync(join(work, 'curated.csv'), 'utf8').startsWith('path,pool_index,reason,score,seed_path,cluster\n'));

  // Same inputs: everything is skipped. Another mode: only retrieve and report run again.
  const again = await runCuration({ ...base, steps: ['embed', 'dedup', 'cluster', 'retrieve', 'report'], mode: 'samples' });
  assert.deepEqual(again.ran, []);
  const clusters = await runCuration({ ...base, steps: ['embed', 'dedup', 'cluster', 'retrieve', 'report'], mode: 'clusters' });
  assert.deepEqual(clusters.ran, ['retrieve', 'report']);
  const byCluster = readTable(join(work, 'curated.arrow')).strings('path');
  assert.ok(byCluster.filter(data.inDistribution).length / byCluster.length >= 0.9);
  // A later step alone, with nothing upstream, says what to run.
  await assert.rejects(runCuration({ work: join(root, 'empty'), steps: ['dedup'] }), /run with --steps embed,dedup/);
});

test('dinots curate CLI: balanced mode over a finished work folder, and a clear error for bad input', () => {
  const work = join(root, 'w-ret');
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--backend', 'cpu', 'curate', ...args], { encoding: 'utf8' });
  const ok = cli(['--work', work, '--steps', 'retrieve', '--mode', 'balanced', '--budget', '16']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /curated 16 images/);
  const bad = cli(['--work', work, '--steps', 'embed,dedupe']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown step 'dedupe'/);
});
