import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { fewShotIndices, knnEvaluate, knnFewShot } from '../../src/eval/knn.js';
import { topkInnerProduct } from '../../src/eval/topk.js';
import type { Matrix } from '../../src/util/matrix.js';
import { Rng } from '../../src/util/rng.js';

await initBackend('cpu');

const m = (rows: number[][]): Matrix => ({ data: Float32Array.from(rows.flat()), rows: rows.length, cols: rows[0]!.length });

/**
 * The official protocol written as directly as possible (v1 eval_knn.py, per k): full similarity, a stable sort by
 * similarity (ties: lower train index first), exp(sim/T) votes, a stable sort of the classes by vote.
 */
function naiveKnn(train: Matrix, ytrain: number[], test: Matrix, ytest: number[], k: number, T: number, C: number) {
  const norm = (x: Matrix, i: number) => {
    const v = Array.from(x.data.subarray(i * x.cols, (i + 1) * x.cols));
    const n = Math.max(Math.hypot(...v), 1e-12);
    return v.map((a) => Math.fround(a / n));
  };
  let top1 = 0;
  let top5 = 0;
  for (let q = 0; q < test.rows; q++) {
    const qv = norm(test, q);
    const sims = Array.from({ length: train.rows }, (_, j) => {
      const tv = norm(train, j);
      return { j, s: Math.fround(qv.reduce((acc, a, d) => acc + a * tv[d]!, 0)) };
    });
    sims.sort((a, b) => b.s - a.s || a.j - b.j);
    const votes = new Array<number>(C).fill(0);
    for (const { j, s } of sims.slice(0, k)) votes[ytrain[j]!]! += Math.exp(s / T);
    const ranked = Array.from({ length: C }, (_, c) => c).sort((a, b) => votes[b]! - votes[a]! || a - b);
    if (ranked[0] === ytest[q]) top1++;
    if (ranked.slice(0, Math.min(5, k)).includes(ytest[q]!)) top5++;
  }
  return { top1: (100 * top1) / test.rows, top5: (100 * top5) / test.rows };
}

test('hand-checked case with ties in similarity and in votes', () => {
  // train: t0=(1,0) c0, t1=(0,1) c1, t2=(1,0) c1 (same point as t0), t3=(-1,0) c2
  const train = m([[1, 0], [0, 1], [2, 0], [-1, 0]]); // t2 has norm 2: normalisation makes it equal to t0
  const ytrain = [0, 1, 1, 2];
  const test_ = m([[1, 0], [0, 3]]);
  const ytest = [1, 2];
  const r = knnEvaluate(train, ytrain, test_, ytest, { k: [1, 2, 3], T: 0.07 });
  // k=1: q0 takes t0 (tie with t2, lower index) -> class 0, wrong; q1 takes t1 -> class 1, wrong; top-1 width 1.
  // k=2: q0 votes c0 = c1 = e^(1/T): tie -> class 0 first, class 1 second (top-2 right); q1: t1, then t0 (sim 0,
  //      tied with t2 and t3, lowest index wins) -> c1 > c0 > c2: target 2 third, out of top-2.
  // k=3: q0: t0, t2, then t1 (sim 0; t3 has -1) -> c1 = e^(1/T) + 1 wins; q1: t1, t0, t2 ->
  //      c1 = e^(1/T) + 1, c0 = 1, c2 = 0 -> target 2 ranked third, inside the top-min(5,3).
  assert.deepEqual(
    r.results.map((x) => [x.k, x.top1, x.top5]),
    [
      [1, 0, 0],
      [2, 0, 50],
      [3, 50, 100],
    ],
  );
  assert.deepEqual(Array.from(r.results[2]!.predictions), [1, 1]);
  // per class at k=3: class 1 (q0) right, class 2 (q1) wrong, class 0 absent
  assert.ok(Number.isNaN(r.results[2]!.perClassTop1[0]!));
  assert.deepEqual(r.results[2]!.perClassTop1.slice(1), [100, 0]);
  assert.equal(r.results[2]!.meanPerClassTop1, 50);
});

test('the temperature decides between one close neighbour and two farther ones', () => {
  // query (1,0); neighbours at cos 0.9 (class 0) and two at cos 0.8 (class 1).
  const s = (c: number) => [c, Math.sqrt(1 - c * c)];
  const train = m([s(0.9), s(0.8), s(0.8)]);
  const q = m([[1, 0]]);
  // T=0.07: e^(0.9/0.07) = 3.85e5 > 2 e^(0.8/0.07) = 1.84e5 -> class 0.  T=1: e^0.9 = 2.46 < 2 e^0.8 = 4.45 -> class 1.
  assert.equal(knnEvaluate(train, [0, 1, 1], q, [0], { k: 3, T: 0.07 }).results[0]!.predictions[0], 0);
  assert.equal(knnEvaluate(train, [0, 1, 1], q, [0], { k: 3, T: 1 }).results[0]!.predictions[0], 1);
});

test('k larger than the bank is clipped', () => {
  const r = knnEvaluate(m([[1, 0], [0, 1]]), [0, 1], m([[1, 0.1]]), [0], { k: [5] });
  assert.equal(r.results[0]!.k, 5);
  assert.equal(r.results[0]!.kUsed, 2);
  assert.equal(r.results[0]!.top1, 100);
});

test('matches the naive protocol on random data with many exact ties, across matmul blocks', () => {
  const rng = new Rng(7);
  const C = 7;
  // few distinct quantised vectors -> many exactly equal similarities and tied votes
  const protos = Array.from({ length: 12 }, () => Array.from({ length: 4 }, () => rng.randint(-2, 2)));
  const pick = () => protos[rng.randint(0, protos.length - 1)]!.map((v) => v || 1);
  const train = m(Array.from({ length: 150 }, pick));
  const test_ = m(Array.from({ length: 60 }, pick));
  const ytrain = Array.from({ length: 150 }, () => rng.randint(0, C - 1));
  const ytest = Array.from({ length: 60 }, () => rng.randint(0, C - 1));
  const ks = [1, 2, 3, 5, 10, 20];
  for (const T of [0.07, 0.5]) {
    const r = knnEvaluate(train, ytrain, test_, ytest, { k: ks, T, numClasses: C, queryBlock: 7, keyBlock: 16 });
    for (const res of r.results) {
      const ref = naiveKnn(train, ytrain, test_, ytest, res.k, T, C);
      assert.deepEqual([res.top1, res.top5], [ref.top1, ref.top5], `k=${res.k} T=${T}`);
    }
  }
});

test('top-k is exact and orders ties by index, independent of block sizes', () => {
  const rng = new Rng(3);
  const bank = m(Array.from({ length: 97 }, () => [rng.randint(0, 3), rng.randint(0, 3), 1]));
  const q = m(Array.from({ length: 9 }, () => [rng.randint(0, 3), rng.randint(0, 3), 1]));
  const a = topkInnerProduct(q, bank, 15, { queryBlock: 2, keyBlock: 10 });
  const b = topkInnerProduct(q, bank, 15);
  assert.deepEqual(a.indices, b.indices);
  for (let i = 0; i < q.rows; i++) {
    const all = Array.from({ length: bank.rows }, (_, j) => ({ j, s: q.data[i * 3]! * bank.data[j * 3]! + q.data[i * 3 + 1]! * bank.data[j * 3 + 1]! + 1 }));
    all.sort((x, y) => y.s - x.s || x.j - y.j);
    assert.deepEqual(Array.from(a.indices.subarray(i * 15, (i + 1) * 15)), all.slice(0, 15).map((x) => x.j));
  }
});

test('top-k leave-one-out, empty slots for NaN scores, and the k-NN error they raise', () => {
  // rows 0 and 2 are the same point: with the query's own row excluded, the copy is the best neighbour.
  const x = m([[1, 0], [0, 1], [1, 0], [0.6, 0.8]]);
  const loo = topkInnerProduct(x, x, 5, { excludeSelf: true, keyBlock: 3 });
  assert.equal(loo.k, 3);
  assert.deepEqual(Array.from(loo.indices.subarray(0, 3)), [2, 3, 1]);
  assert.deepEqual(Array.from(loo.indices.subarray(6, 9)), [0, 3, 1]);
  assert.throws(() => topkInnerProduct(m([[1, 0]]), x, 1, { excludeSelf: true }), /excludeSelf needs the queries to be the keys/);
  // A NaN key never enters the list: the last slot stays empty.
  const withNaN = m([[1, 0], [NaN, 0]]);
  const r = topkInnerProduct(m([[1, 0]]), withNaN, 2);
  assert.deepEqual([Array.from(r.indices), Array.from(r.scores)], [[0, -1], [1, -Infinity]]);
  assert.throws(() => knnEvaluate(withNaN, [0, 1], m([[1, 0]]), [0], { k: 2, normalize: false }), /test row 0 has NaN or infinite similarities/);
});

test('few-shot subsets take n per class and average over tries', () => {
  const labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0];
  const idx = Array.from(fewShotIndices(labels, 2, 0));
  assert.equal(idx.length, 6);
  assert.deepEqual(idx.map((i) => labels[i]), [0, 0, 1, 1, 2, 2]);
  assert.equal(new Set(idx).size, 6);
  assert.notDeepEqual(Array.from(fewShotIndices(labels, 2, 1)), [], 'another seed still gives a subset');
  // well separated classes: one shot is enough
  const train = m(labels.map((c) => [c === 0 ? 1 : 0, c === 1 ? 1 : 0, c === 2 ? 1 : 0]));
  const r = knnFewShot(train, labels, m([[1, 0.1, 0], [0, 0, 1]]), [0, 2], 1, { k: [1, 10], tries: 3 });
  assert.deepEqual(r.results.map((x) => [x.k, x.top1]), [[1, 100]]);
});
