import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { fitPca, patchPca, projectPca, symmetricEigen } from '../../src/eval/pca.js';
import type { Matrix } from '../../src/util/matrix.js';
import { Rng } from '../../src/util/rng.js';

await initBackend('cpu');

/** N points = sum_k a_k * s_k * u_k + noise, with orthonormal u_k (random rotation) and std s_k. */
function synthetic(N: number, D: number, stds: number[], noise: number, seed: number) {
  const rng = new Rng(seed);
  const dirs: Float64Array[] = [];
  for (let k = 0; k < stds.length; k++) {
    let v = Float64Array.from({ length: D }, () => rng.normal());
    for (const u of dirs) {
      const d = v.reduce((s, a, i) => s + a * u[i]!, 0);
      v = v.map((a, i) => a - d * u[i]!);
    }
    const n = Math.hypot(...v);
    dirs.push(v.map((a) => a / n));
  }
  const data = new Float32Array(N * D);
  const offset = Array.from({ length: D }, () => rng.normal(0, 3));
  for (let i = 0; i < N; i++) {
    for (let d = 0; d < D; d++) data[i * D + d] = offset[d]! + rng.normal(0, noise);
    stds.forEach((s, k) => {
      const a = rng.normal(0, s);
      for (let d = 0; d < D; d++) data[i * D + d]! += a * dirs[k]![d]!;
    });
  }
  return { x: { data, rows: N, cols: D } as Matrix, dirs };
}

test('symmetric eigensolver on a hand-checked matrix', () => {
  // [[2,1],[1,2]]: eigenvalues 3 (1,1)/√2 and 1 (1,-1)/√2
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(values[0]! - 3) < 1e-12 && Math.abs(values[1]! - 1) < 1e-12);
  assert.ok(Math.abs(Math.abs(vectors[0]![0]!) - Math.SQRT1_2) < 1e-12 && Math.abs(vectors[0]![0]! - vectors[0]![1]!) < 1e-12);
});

for (const D of [16, 96]) {
  test(`PCA recovers planted components (D=${D}, ${D <= 64 ? 'Jacobi' : 'subspace iteration'})`, () => {
    const stds = [5, 3, 2, 1.5];
    const { x, dirs } = synthetic(3000, D, stds, 0.05, D);
    const p = fitPca(x, 4);
    p.components.forEach((c, k) => {
      const cos = Math.abs(c.reduce((s, a, i) => s + a * dirs[k]![i]!, 0));
      assert.ok(cos > 0.995, `component ${k}: |cos| ${cos}`);
      assert.ok(Math.abs(Math.sqrt(p.variances[k]!) / stds[k]! - 1) < 0.06, `std ${Math.sqrt(p.variances[k]!)} vs ${stds[k]}`);
    });
    // projections are centred and uncorrelated
    const proj = projectPca(x, p, 2);
    let m0 = 0;
    let c01 = 0;
    for (let i = 0; i < x.rows; i++) {
      m0 += proj[i * 2]! / x.rows;
      c01 += (proj[i * 2]! * proj[i * 2 + 1]!) / x.rows;
    }
    assert.ok(Math.abs(m0) < 1e-3 && Math.abs(c01) < 0.05, `mean ${m0}, cov ${c01}`);
  });
}

test('patch PCA finds a planted foreground and orients the first component', () => {
  // two 6x6 images; a centred 2x2..4x4 object has features near A, the background near B
  const rng = new Rng(9);
  const D = 8;
  const grids: [number, number][] = [[6, 6], [6, 6]];
  const truth: number[] = [];
  const feats = grids.map(([gh, gw], img) => {
    const data = new Float32Array(gh * gw * D);
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++) {
        const fg = y >= 1 + img && y <= 3 + img && x >= 2 && x <= 4 ? 1 : 0;
        truth.push(fg);
        for (let d = 0; d < D; d++) data[(y * gw + x) * D + d] = rng.normal(0, 0.1) + (fg ? (d === 0 ? 3 : d === 1 ? x - 3 : d === 2 ? y - 3 : 0) : d === 0 ? -3 : 0);
      }
    }
    return { data, rows: gh * gw, cols: D } as Matrix;
  });
  const res = patchPca(feats, grids);
  const fg = res.flatMap((r) => Array.from(r.foreground));
  assert.deepEqual(fg, truth);
  // colours only on the foreground, in [0, 1], not constant
  const rgb = res.flatMap((r) => Array.from(r.rgb));
  truth.forEach((t, i) => {
    if (!t) assert.deepEqual(rgb.slice(3 * i, 3 * i + 3), [0, 0, 0]);
  });
  assert.ok(rgb.every((v) => v >= 0 && v <= 1) && new Set(rgb.map((v) => v.toFixed(3))).size > 5);
});
