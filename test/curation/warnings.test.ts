// Useless curation results are called out: with an embedding that maps every image to nearly the same vector (a
// collapsed or random-init model), dedup chains the pool into one group and retrieval falls far short of the budget;
// clustering that leaves most clusters empty or singletons warns too. Each step warns with what it measured and the
// fix, in the log and in its summary (stats.json holds the summaries; the report lists the warnings first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCuration, type Embedder } from '../../src/curation/pipeline.js';
import { makeMatrix } from '../../src/util/matrix.js';
import { Rng } from '../../src/util/rng.js';

/** n images per spec, all at one direction plus noise of `noise`. */
function collapsedEmbedder(n: number, noise: number): Embedder {
  return async (spec) => {
    const rng = new Rng([spec.length]);
    const dim = 16;
    const data = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) data[i * dim + d] = 1 + rng.normal(0, noise);
    return { paths: Array.from({ length: n }, (_, i) => `${spec}/img${i}.png`), embeddings: makeMatrix(n, dim, data) };
  };
}

test('a collapsed embedding: dedup and retrieve each warn with the measured reason and the fix', async () => {
  const work = mkdtempSync(join(tmpdir(), 'dinots-curate-warn-'));
  try {
    const lines: string[] = [];
    const r = await runCuration({
      work, steps: ['embed', 'dedup', 'retrieve'], pool: 'pool', seed: 'seeds', embedder: collapsedEmbedder(200, 1e-3), modelId: 'collapsed',
      budget: 100, mode: 'samples', log: (s) => lines.push(s),
    });
    // (cluster stops with an error here: 1 image survived dedup for 20 clusters.)
    const warnings = (step: 'dedup' | 'retrieve') => (r.records[step]!.summary.warnings as string[]);
    assert.match(warnings('dedup')[0]!, /200 images \(100% of the pool\) chained into one duplicate group .*raise --dedup-threshold, or use --model pixels/);
    assert.ok(lines.some((l) => /^dedup: warning: 200 images/.test(l)));
    assert.match(warnings('retrieve')[0]!, /only 1 images curated for a budget of 100: 1 pool images were eligible after dedup \(dedup removed the rest/);
    assert.ok(lines.some((l) => /^retrieve: warning: only 1 images curated/.test(l)));
    // A pool the embedding separates: no warnings.
    const ok = await runCuration({
      work: join(work, 'ok'), steps: ['embed', 'dedup', 'cluster', 'retrieve'], pool: 'pool', seed: 'seeds', embedder: collapsedEmbedder(200, 1), modelId: 'spread',
      budget: 100, clusters: [10], mode: 'samples', log: () => {},
    });
    for (const s of ['dedup', 'cluster', 'retrieve'] as const) assert.deepEqual(ok.records[s]!.summary.warnings, [], s);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('clustering with mostly empty or singleton clusters warns', async () => {
  const work = mkdtempSync(join(tmpdir(), 'dinots-curate-warn-'));
  try {
    const lines: string[] = [];
    // 30 images, 28 clusters: most clusters get 0 or 1 image.
    const r = await runCuration({ work, steps: ['embed', 'cluster'], pool: 'pool', embedder: collapsedEmbedder(30, 1), modelId: 'spread', clusters: [28], log: (s) => lines.push(s) });
    assert.match((r.records.cluster!.summary.warnings as string[])[0]!, /of 28 clusters hold 0 or 1 images.*lower --clusters/);
    assert.ok(lines.some((l) => /^cluster: warning:/.test(l)));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
