import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { Rng } from '../../src/util/rng.js';
import { makeMatrix, l2NormalizeRows, selectRows } from '../../src/util/matrix.js';
import { UnionFind } from '../../src/curation/unionfind.js';
import { topkInnerProduct, bruteForceTopK } from '../../src/eval/topk.js';
import { annTopK } from '../../src/eval/ann.js';
import { kmeans, reseedEmptyClusters, assignToCentroids } from '../../src/curation/kmeans.js';
import { balancedAllocation, hierarchicalKMeans, hierarchicalSample, topLevelLabels } from '../../src/curation/hkmeans.js';
import { deduplicate, findEvalOverlap, groupsFromNeighbours } from '../../src/curation/dedup.js';
import { clusteredVectors, plantDuplicates, pairScores } from '../../src/curation/synthetic.js';
import { retrieveBySamples, retrieveByClusters, randomSelection } from '../../src/curation/retrieve.js';

before(async () => {
  await initBackend('cpu');
});

function randomUnit(n: number, d: number, seed: number) {
  const rng = new Rng(seed);
  const m = makeMatrix(n, d);
  for (let i = 0; i < m.data.length; i++) m.data[i] = rng.normal();
  return l2NormalizeRows(m);
}

test('union-find: components of a hand-drawn graph', () => {
  const uf = new UnionFind(7);
  // 0-1-2 chain, 3-4, 5 and 6 alone
  assert.equal(uf.union(0, 1), true);
  assert.equal(uf.union(2, 1), true);
  assert.equal(uf.union(3, 4), true);
  assert.equal(uf.union(0, 2), false);
  const { label, count } = uf.components();
  assert.equal(count, 4);
  assert.deepEqual(Array.from(label), [0, 0, 0, 1, 1, 2, 3]);
});

test('blocked top-k equals brute force (odd blocks, self excluded, exact duplicates)', async () => {
  const x = randomUnit(203, 24, 3);
  x.data.copyWithin(5 * 24, 9 * 24, 10 * 24); // row 5 := row 9 (score 1 tie)
  const q = randomUnit(37, 24, 4);
  for (const [queries, keys, self] of [[x, x, true], [q, x, false]] as const) {
    const ref = bruteForceTopK(queries, keys, 7, { excludeSelf: self });
    const got = topkInnerProduct(queries, keys, 7, { excludeSelf: self, queryBlock: 16, keyBlock: 50 });
    assert.equal(got.k, 7);
    assert.deepEqual(Array.from(got.indices), Array.from(ref.indices));
    for (let i = 0; i < ref.scores.length; i++) assert.ok(Math.abs(got.scores[i]! - ref.scores[i]!) < 1e-5);
  }
  assert.equal(bruteForceTopK(x, x, 1, { excludeSelf: true }).indices[5], 9);
  // Fewer keys than k: k shrinks, nothing invented.
  const small = topkInnerProduct(q, randomUnit(3, 24, 5), 10);
  assert.equal(small.k, 3);
});

test('usearch ANN finds the exact neighbours on easy clustered data', () => {
  const { x } = clusteredVectors(1500, 32, 30, 0.5, 8);
  const ref = bruteForceTopK(x, x, 5, { excludeSelf: true });
  const got = annTopK(x, x, { k: 5, excludeSelf: true });
  let hit = 0;
  for (let i = 0; i < x.rows; i++) {
    const s = new Set(ref.indices.subarray(i * 5, i * 5 + 5));
    for (let m = 0; m < 5; m++) if (s.has(got.indices[i * 5 + m]!)) hit++;
  }
  assert.ok(hit / ref.indices.length > 0.95, `recall@5 ${hit / ref.indices.length}`);
  for (let i = 0; i < x.rows; i++) assert.notEqual(got.indices[i * 5], i);
});

test('usearch ANN with i8 / f16 storage still reports exact cosines, best first, with progress', () => {
  const { x } = clusteredVectors(1200, 48, 20, 0.5, 9);
  for (const quantization of ['i8', 'f16'] as const) {
    const seen: [number, number][] = [];
    const got = annTopK(x, x, { k: 4, excludeSelf: true, quantization, batch: 500, onProgress: (d, t) => seen.push([d, t]) });
    for (let i = 0; i < x.rows; i++) {
      for (let m = 0; m < 4; m++) {
        const j = got.indices[i * 4 + m]!;
        if (j < 0) continue;
        let dot = 0;
        for (let c = 0; c < 48; c++) dot += x.data[i * 48 + c]! * x.data[j * 48 + c]!;
        assert.ok(Math.abs(got.scores[i * 4 + m]! - dot) < 1e-5, `${quantization}: row ${i} neighbour ${j}: score ${got.scores[i * 4 + m]} vs cosine ${dot}`);
        if (m > 0) assert.ok(got.scores[i * 4 + m]! <= got.scores[i * 4 + m - 1]!, `${quantization}: row ${i} not sorted`);
      }
    }
    // 3 add batches then 3 search batches, on one scale
    assert.deepEqual(seen, [[500, 2400], [1000, 2400], [1200, 2400], [1700, 2400], [2200, 2400], [2400, 2400]]);
  }
});

/** Every found cluster maps to exactly one true blob and back. */
function recovers(found: Int32Array, truth: Int32Array, k: number): boolean {
  const map = new Map<number, number>();
  for (let i = 0; i < found.length; i++) {
    const prev = map.get(found[i]!);
    if (prev !== undefined && prev !== truth[i]) return false;
    map.set(found[i]!, truth[i]!);
  }
  return map.size === k && new Set(map.values()).size === k;
}

test('k-means recovers separable blobs, deterministically for a seed', async () => {
  const { x, label } = clusteredVectors(600, 16, 6, 0.3, 11);
  const a = await kmeans(x, { k: 6, seed: 5, block: 128 });
  assert.ok(recovers(a.assignments, label, 6));
  assert.deepEqual(Array.from(a.sizes), [100, 100, 100, 100, 100, 100]);
  const b = await kmeans(x, { k: 6, seed: 5, block: 128 });
  assert.deepEqual(Array.from(b.assignments), Array.from(a.assignments));
  // Centroids are the member means.
  const c0 = Array.from({ length: 16 }, (_, j) => {
    let s = 0;
    for (let i = 0; i < x.rows; i++) if (a.assignments[i] === 0) s += x.data[i * 16 + j]!;
    return s / a.sizes[0]!;
  });
  c0.forEach((v, j) => assert.ok(Math.abs(v - a.centroids.data[j]!) < 1e-5));
  // Assignment by matmul equals the loop definition.
  const { assignments } = await assignToCentroids(x, a.centroids, 50);
  assert.deepEqual(Array.from(assignments), Array.from(a.assignments));
});

test('k-means re-seeds empty clusters from the farthest points', async () => {
  const { x } = clusteredVectors(300, 8, 3, 0.3, 2);
  // Two identical initial centroids: argmin ties leave the second one empty; a third sits far from every point.
  const init = makeMatrix(4, 8);
  init.data.set(x.data.subarray(0, 8), 0);
  init.data.set(x.data.subarray(0, 8), 8);
  init.data.set(x.data.subarray(8, 16), 16);
  for (let j = 0; j < 8; j++) init.data[24 + j] = 100;
  const res = await kmeans(x, { k: 4, init, iters: 10 });
  assert.ok(res.reseeded >= 2, `re-seeded ${res.reseeded}`);
  assert.ok(res.sizes.every((s) => s > 0), `sizes ${Array.from(res.sizes)}`);
  assert.equal(res.sizes.reduce((s, v) => s + v, 0), 300);

  // Direct check: cluster 1 empty, farthest point (index 2, distance 9) moves there.
  const pts = makeMatrix(4, 1, Float32Array.from([0, 1, 3, 0.5]));
  const cents = makeMatrix(2, 1, Float32Array.from([0, 50]));
  const asg = Int32Array.from([0, 0, 0, 0]);
  const dist = Float32Array.from([0, 1, 9, 0.25]);
  const sizes = Int32Array.from([4, 0]);
  assert.equal(reseedEmptyClusters(pts, cents, asg, dist, sizes), 1);
  assert.deepEqual(Array.from(asg), [0, 0, 1, 0]);
  assert.deepEqual(Array.from(sizes), [3, 1]);
  assert.equal(cents.data[1], 3);
});

test('balanced allocation: water-filling with hand-checked caps', () => {
  assert.deepEqual(balancedAllocation([1, 5, 10], 9, new Rng(0)), [1, 4, 4]);
  const t10 = balancedAllocation([1, 5, 10], 10, new Rng(0));
  assert.equal(t10.reduce((s, v) => s + v, 0), 10);
  assert.equal(t10[0], 1);
  assert.ok((t10[1] === 5 && t10[2] === 4) || (t10[1] === 4 && t10[2] === 5));
  assert.deepEqual(balancedAllocation([3, 2], 100, new Rng(0)), [3, 2]);
});

test('hierarchical k-means + balanced sampling evens out imbalanced concepts', async () => {
  // Three well separated concepts with 1000, 100 and 20 points.
  const parts = [clusteredVectors(1000, 16, 1, 0.4, 21), clusteredVectors(100, 16, 1, 0.4, 22), clusteredVectors(20, 16, 1, 0.4, 23)];
  const x = makeMatrix(1120, 16);
  const concept = new Int32Array(1120);
  let at = 0;
  parts.forEach((p, c) => {
    x.data.set(p.x.data, at * 16);
    concept.fill(c, at, at + p.x.rows);
    at += p.x.rows;
  });
  const h = await hierarchicalKMeans(x, { levels: [30, 3], seed: 1, resampleSizes: [5, 1], resampleSteps: 2 });
  assert.equal(h.levels[0]!.assignments.length, 1120);
  assert.equal(h.levels[1]!.assignments.length, 30);
  assert.ok(recovers(topLevelLabels(h), concept, 3));
  const picked = hierarchicalSample(h, 60, 3);
  assert.equal(picked.length, 60);
  assert.equal(new Set(picked).size, 60);
  const perConcept = [0, 0, 0];
  for (const i of picked) perConcept[concept[i]!]!++;
  assert.deepEqual(perConcept, [20, 20, 20]); // a random sample would give about [54, 5, 1]
});

test('dedup finds planted near-copies of synthetic embeddings (precision and recall 1)', async () => {
  const base = clusteredVectors(800, 32, 10, 1.0, 31).x;
  const { x, pairs } = plantDuplicates(base, 40, 0.1, 32);
  const res = deduplicate(x, { threshold: 0.95, k: 8, queryBlock: 100, keyBlock: 300 });
  const score = pairScores(res.component, pairs, x.rows);
  assert.equal(score.precision, 1);
  assert.equal(score.recall, 1);
  // One survivor per group, and it belongs to the group.
  res.groups.forEach((g, i) => {
    assert.equal(g.filter((r) => res.keep[r]).length, 1);
    assert.ok(res.keep[res.keepers[i]!]);
  });
  // Groups from a hand-made neighbour list: 0-1 above threshold, 1-2 below, 3-4 above.
  const nb = { k: 1, rows: 5, indices: Int32Array.from([1, 2, 1, 4, 3]), scores: Float32Array.from([0.99, 0.5, 0.5, 0.97, 0.97]) };
  const g = groupsFromNeighbours(nb, 5, 0.95);
  assert.deepEqual(g.groups, [[0, 1], [3, 4]]);
  assert.equal(g.edges, 2);
});

test('eval overlap flags pool images that copy evaluation images', async () => {
  const { x, pairs } = plantDuplicates(clusteredVectors(300, 32, 5, 1.0, 41).x, 5, 0.1, 42); // rows 300..304 copy pool rows
  const pool = makeMatrix(300, 32, x.data.slice(0, 300 * 32));
  const evalSet = makeMatrix(5, 32, x.data.slice(300 * 32));
  const res = findEvalOverlap(pool, evalSet, { threshold: 0.9 });
  assert.deepEqual(res.removed, [...new Set(pairs.map(([a]) => a))].sort((a, b) => a - b));
  assert.deepEqual(Array.from(res.removed.map((r) => res.match[r]!)).length, res.removed.length);
});

test('sample- and cluster-based retrieval pick the seed concept, random does not', async () => {
  const { x: pool, label } = clusteredVectors(1200, 32, 6, 0.8, 51);
  const seeds = selectRows(clusteredVectors(60, 32, 6, 0.8, 51).x, [0, 6, 12, 18, 24]); // label 0 only (same centres: same seed)
  const inDist = (rows: number[]) => rows.filter((r) => label[r] === 0).length / rows.length;
  const bySample = await retrieveBySamples(pool, seeds, { budget: 100 });
  assert.equal(bySample.index.length, 100);
  assert.equal(inDist(bySample.index), 1);
  const km = await kmeans(pool, { k: 12, seed: 0 });
  const byCluster = await retrieveByClusters(pool, seeds, { assignments: km.assignments, centroids: km.centroids, budget: 100 });
  assert.equal(byCluster.index.length, 100);
  assert.equal(inDist(byCluster.index), 1);
  const random = randomSelection(pool.rows, 100, 0);
  assert.ok(inDist(random) < 0.35);
  // Eligibility is respected.
  const eligible = new Uint8Array(pool.rows).fill(1);
  for (const r of bySample.index.slice(0, 10)) eligible[r] = 0;
  const again = await retrieveBySamples(pool, seeds, { budget: 100, eligible });
  assert.ok(again.index.every((r) => eligible[r]));
});
