import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MaskingGenerator, roundHalfEven } from '../../src/ssl/masking.js';
import { collateMasks, deriveMaskTensors, linspaceFloat32, maskRatioBins } from '../../src/ssl/collate.js';
import { countComponents, maskStatistics } from '../../src/ssl/mask_statistics.js';
import { Rng } from '../../src/util/rng.js';

const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

test('Python-style rounding (half to even)', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 2.4999, 2.6, 3.5].map(roundHalfEven), [0, 2, 2, 2, 3, 4]);
});

test('masking: counts within the target; placement reaches every edge', () => {
  const gen = new MaskingGenerator({ inputSize: [16, 16], maxNumPatches: 128 });
  const rng = new Rng(1);
  for (const target of [0, 4, 13, 51, 128, 200]) {
    for (let d = 0; d < 200; d++) {
      const m = gen.generate(rng, target);
      assert.equal(m.length, 256);
      assert.ok(count(m) <= target, `target ${target}: ${count(m)} masked`);
      // up to 51 cells every block shape fits the 16x16 grid (h, w <= round(sqrt(51 / 0.3)) = 13), so the first try paints
      if (target >= 4 && target <= 51) assert.ok(count(m) > 0, `target ${target}: nothing masked`);
    }
  }
  // placement covers the whole grid (randint is inclusive at both ends): every edge cell gets masked sometimes,
  // and the row profile is symmetric
  const st = maskStatistics(gen, 26, 2000, rng);
  for (const p of [0, 15, 240, 255]) assert.ok(st.marginal[p]! > 0, `corner ${p} never masked`);
  assert.ok(Math.abs(st.rowProfile[0]! - st.rowProfile[15]!) < 0.02 && Math.abs(st.colProfile[0]! - st.colProfile[15]!) < 0.02);
});

test('masking: seeded draws are reproducible and resumable', () => {
  const gen = new MaskingGenerator({ inputSize: 14, maxNumPatches: 98 });
  const a = new Rng(5);
  const b = new Rng(5);
  for (let i = 0; i < 20; i++) assert.deepEqual(gen.generate(a, 60), gen.generate(b, 60));
  const state = a.getState();
  const next = gen.generate(a, 60);
  const c = new Rng(0);
  c.setState(state);
  assert.deepEqual(gen.generate(c, 60), next);
  assert.notDeepEqual(gen.generate(new Rng(6), 60), gen.generate(new Rng(7), 60));
});

test('4-connected components', () => {
  // 1 1 0
  // 0 0 1   -> diagonal contact does not join: 3 components
  // 1 0 1   (the right column cells 5 and 8 are joined)
  assert.equal(countComponents(Uint8Array.from([1, 1, 0, 0, 0, 1, 1, 0, 1]), 3, 3), 3);
  assert.equal(countComponents(new Uint8Array(9), 3, 3), 0);
});

test('masking statistics: 2000 draws are fast and near the official distribution', () => {
  const gen = new MaskingGenerator({ inputSize: [16, 16], maxNumPatches: 128 });
  const t0 = Date.now();
  const s = maskStatistics(gen, 51, 2000, new Rng(3));
  assert.ok(Date.now() - t0 < 2000, `2000 draws took ${Date.now() - t0} ms`);
  // official (dinov2_masking/t51): mean 50.92, frac == target 0.92, mean components 2.83
  assert.ok(Math.abs(s.meanCount - 50.921) < 0.1, `mean ${s.meanCount}`);
  assert.ok(s.maxCount === 51 && s.minCount >= 44);
  assert.ok(Math.abs(s.fracEqTarget - 0.9225) < 0.05, `frac eq ${s.fracEqTarget}`);
  assert.ok(Math.abs(s.meanComponents - 2.8345) < 0.1, `components ${s.meanComponents}`);
});

test('float32 linspace like torch.linspace', () => {
  assert.deepEqual(Array.from(linspaceFloat32(0.1, 0.5, 5)), [0.1, 0.2, 0.3, 0.4, 0.5].map(Math.fround));
  // the official fixture: 8 images of 64 tokens -> int(64*0.2)+int(64*0.3)+int(64*0.4)+int(64*0.5) = 12+19+25+32
  assert.equal(maskRatioBins(8, 64).upperbound, 88);
  assert.equal(maskRatioBins(8, 64).nMasked, 4);
});

test('collateMasks: shapes, stratified counts, weights and indices', () => {
  const gen = new MaskingGenerator({ inputSize: 8, maxNumPatches: 32 });
  const rng = new Rng(9);
  for (let rep = 0; rep < 50; rep++) {
    const c = collateMasks(8, 64, gen, rng);
    assert.deepEqual(c.shape, [8, 64]);
    assert.equal(c.data.length, 8 * 64);
    assert.equal(c.upperbound, 88);
    assert.equal(c.maskIndices.length, c.nMaskedPatches);
    assert.equal(c.masksWeight.length, c.nMaskedPatches);
    assert.ok(c.nMaskedPatches <= c.upperbound);
    const perImage = Array.from({ length: 8 }, (_, i) => count(c.data.subarray(i * 64, i * 64 + 64)));
    assert.ok(perImage.filter((n) => n > 0).length <= 4, `at most int(8*0.5) images are masked: ${perImage}`);
    // the masked images' counts are stratified: sorted, each lies below its bin's top int(64*probs[i+1])
    const sorted = perImage.filter((n) => n > 0).sort((a, b) => a - b);
    const tops = [12, 19, 25, 32].slice(4 - sorted.length);
    sorted.forEach((n, i) => assert.ok(n <= tops[i]!, `counts ${sorted} exceed bins ${tops}`));
    // indices point at masked cells, in order; each image's weights sum to 1
    for (const i of c.maskIndices) assert.equal(c.data[i], 1);
    let k = 0;
    for (const n of perImage) {
      let w = 0;
      for (let j = 0; j < n; j++) w += c.masksWeight[k++]!;
      if (n > 0) assert.ok(Math.abs(w - 1) < 1e-5);
    }
  }
  const a = collateMasks(8, 64, gen, new Rng(4));
  const b = collateMasks(8, 64, gen, new Rng(4));
  assert.deepEqual(a, b);
  assert.throws(() => collateMasks(8, 49, gen, rng), /nTokens/);
});

test('deriveMaskTensors on a hand case', () => {
  const d = deriveMaskTensors({ data: Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 0, 0]), shape: [3, 3] });
  assert.deepEqual(Array.from(d.maskIndices), [1, 2, 6]);
  assert.deepEqual(Array.from(d.masksWeight), [0.5, 0.5, 1]);
  assert.equal(d.nMaskedPatches, 3);
});
