import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { ApproxCosineIndex, exactCosineSearch, retrievalMetrics } from '../../src/eval/retrieval.js';
import type { TopK } from '../../src/eval/topk.js';
import type { Matrix } from '../../src/util/matrix.js';
import { Rng } from '../../src/util/rng.js';

await initBackend('cpu');

test('mAP, recall@k and precision@k on a hand-checked ranking', () => {
  // query 0 (label 0): ranking labels [0, 1, 0, 1]; 2 relevant -> AP = (1/1 + 2/3) / 2 = 5/6
  // query 1 (label 1): ranking labels [0, 0, 1, 1]; AP = (1/3 + 2/4) / 2 = 5/12
  const indexLabels = [0, 1, 0, 1];
  const ranked: TopK = { k: 4, rows: 2, indices: Int32Array.from([0, 1, 2, 3, 0, 2, 1, 3]), scores: new Float32Array(8) };
  const m = retrievalMetrics(ranked, [0, 1], indexLabels, { ks: [1, 2, 3] });
  assert.ok(Math.abs(m.mAP - (100 * (5 / 6 + 5 / 12)) / 2) < 1e-9);
  assert.deepEqual(m.recallAt, { 1: 50, 2: 50, 3: 100 });
  assert.ok(Math.abs(m.precisionAt[2]! - 25) < 1e-9); // (1/2 + 0/2) / 2
  // a truncated list counts the missing relevant items as not found: depth 2 -> AP0 = 1/2, AP1 = 0
  const short: TopK = { k: 2, rows: 2, indices: Int32Array.from([0, 1, 0, 2]), scores: new Float32Array(4) };
  assert.ok(Math.abs(retrievalMetrics(short, [0, 1], indexLabels).mAP - 25) < 1e-9);
});

test('exact cosine search with leave-one-out, and the approximate index agreeing on clear neighbours', () => {
  // three tight clusters in 8 dims; every point's neighbours are its cluster mates
  const rng = new Rng(2);
  const centres = Array.from({ length: 3 }, () => Array.from({ length: 8 }, () => rng.normal()));
  const n = 30;
  const data = new Float32Array(n * 8);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(i % 3);
    for (let d = 0; d < 8; d++) data[i * 8 + d] = centres[i % 3]![d]! * (1 + rng.uniform(0, 2)) + rng.normal(0, 0.01);
  }
  const x: Matrix = { data, rows: n, cols: 8 };
  const exact = exactCosineSearch(x, x, n - 1, { excludeSelf: true });
  assert.equal(exact.k, n - 1);
  for (let q = 0; q < n; q++) assert.ok(!Array.from(exact.indices.subarray(q * exact.k, (q + 1) * exact.k)).includes(q));
  const m = retrievalMetrics(exact, labels, labels, { ks: [1, 9], excludeSelf: true });
  assert.equal(m.mAP, 100);
  assert.deepEqual(m.recallAt, { 1: 100, 9: 100 });
  assert.equal(m.precisionAt[9], 100);
  const approx = ApproxCosineIndex.build(x).search(x, 5, { excludeSelf: true });
  for (let q = 0; q < n; q++) {
    for (let j = 0; j < 5; j++) assert.equal(labels[approx.indices[q * 5 + j]!], labels[q]);
    // Its first hit is a cluster mate about as close as the exact first (an approximate graph may return the
    // second-closest mate: within a cluster the cosines differ by ~1e-5 to 1e-4).
    assert.ok(Math.abs(approx.scores[q * 5]! - exact.scores[q * exact.k]!) < 1e-3, `query ${q}: ${approx.scores[q * 5]} vs ${exact.scores[q * exact.k]}`);
  }
  // a single query (usearch answers one vector differently from a batch)
  const one = ApproxCosineIndex.build(x).search({ data: x.data.slice(0, 8), rows: 1, cols: 8 }, 3);
  assert.equal(one.indices[0], 0);
  assert.ok(Math.abs(one.scores[0]! - 1) < 1e-5);
});
