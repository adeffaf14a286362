// Pos-embed interpolation in each mode against torch 1.13's F.interpolate (values computed once offline):
// grid g[i] = sin(1.3·i) of M×M, resized to gh×gw by
//   scale_factor:   F.interpolate(g, scale_factor=((gh+0.1)/M, (gw+0.1)/M), mode='bicubic')
//   size:           F.interpolate(g, size=(gh, gw), mode='bicubic')
//   size_antialias: F.interpolate(g, size=(gh, gw), mode='bicubic', antialias=True)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf.js';
import { initBackend } from '../../src/backend/select.js';
import type { PosEmbedInterpolation } from '../../src/models/config.js';
import { axisMatrix, interpolatePosEmbed, resizePatchGrid } from '../../src/nn/posembed.js';

const TORCH: [number, number, number, PosEmbedInterpolation, number[]][] = [
  [4, 6, 5, 'scale_factor', [0.0169052, 0.8021324, 0.9787461, 0.1376, -0.8028211, -0.5027143, 0.3381887, 0.9453776, 0.5762398, -0.2854859, -1.0214821, -0.3643334, 0.6147566, 0.9679767, 0.4700214, -0.9742855, -0.8341615, -0.0181796, 0.8293437, 0.9343182, -0.3719587, -0.8681715, -0.6897897, 0.210549, 0.9056768, 0.2387183, -0.6328805, -1.0355985, -0.3647676, 0.6072251]],
  [5, 3, 4, 'scale_factor', [0.1392163, 0.985089, -0.2206273, -0.865543, 0.4589363, 0.8472024, -0.5540875, -0.7181011, 0.7296813, 0.5841593, -0.8259109, -0.4631157]],
  [4, 2, 3, 'size', [-0.2873324, 0.9510369, -0.0927985, -0.4521231, -0.6906978, 0.7281957]],
  [4, 6, 5, 'size', [0.0188646, 0.8241482, 0.957353, 0.0639885, -0.8510287, -0.5154616, 0.351897, 0.9510368, 0.5303805, -0.3112124, -1.0280119, -0.3670491, 0.6297485, 0.9512675, 0.4806129, -0.9513232, -0.8419089, -0.0125552, 0.8302619, 0.9622366, -0.3194442, -0.8618494, -0.690698, 0.2210886, 0.9198228, 0.2577725, -0.6551808, -1.0436132, -0.3129798, 0.649372]],
  [4, 2, 3, 'size_antialias', [-0.2794069, 0.6901121, 0.1506077, -0.5683981, -0.4246771, 0.6476577]],
  [4, 6, 5, 'size_antialias', [0.0168139, 0.7825585, 0.8852853, 0.0986428, -0.8075627, -0.4660858, 0.355819, 0.855202, 0.4954379, -0.2977924, -0.9817592, -0.2881121, 0.6062742, 0.8915896, 0.4402266, -0.9099464, -0.8004441, -0.052451, 0.748235, 0.9567964, -0.3042073, -0.7990736, -0.629688, 0.1722905, 0.8666532, 0.217309, -0.6478357, -0.9538281, -0.3015922, 0.6346633]],
  [6, 4, 2, 'size_antialias', [0.2946228, -0.2325568, -0.2658157, 0.3032472, 0.0478937, -0.1450639, 0.241441, -0.1565565]],
];

function grid(M: number, D = 1): tf.Tensor {
  // D channels: channel c holds the test grid times (c + 1), to check the channels are kept apart.
  const v = new Float32Array(M * M * D);
  for (let i = 0; i < M * M; i++) for (let c = 0; c < D; c++) v[i * D + c] = Math.sin(1.3 * i) * (c + 1);
  return tf.tensor2d(v, [M * M, D]);
}

test('resizePatchGrid matches torch bicubic in every mode', async () => {
  await initBackend('cpu');
  for (const [M, gh, gw, mode, expected] of TORCH) {
    const out = resizePatchGrid(grid(M, 3), M, gh, gw, mode, 0.1).arraySync() as number[][];
    assert.equal(out.length, gh * gw);
    for (let i = 0; i < gh * gw; i++) {
      for (let c = 0; c < 3; c++) {
        const want = expected[i]! * (c + 1);
        assert.ok(Math.abs(out[i]![c]! - want) < 3e-6, `${mode} ${M}->${gh}x${gw} [${i},${c}]: ${out[i]![c]} vs torch ${want}`);
      }
    }
  }
});

test('resize matrices: rows sum to 1; the offset shifts scale_factor samples away from size mode', () => {
  for (const mode of ['scale_factor', 'size', 'size_antialias'] as const) {
    const m = axisMatrix(37, 16, mode, 0.1);
    for (let r = 0; r < 16; r++) {
      let s = 0;
      for (let c = 0; c < 37; c++) s += m[r * 37 + c]!;
      assert.ok(Math.abs(s - 1) < 1e-12, `${mode} row ${r} sums to ${s}`);
    }
  }
  const a = axisMatrix(37, 16, 'scale_factor', 0.1);
  const b = axisMatrix(37, 16, 'size', 0.1);
  assert.ok(a.some((v, i) => Math.abs(v - b[i]!) > 1e-3));
  // An offset of 1 or more makes torch produce a different size, which the official code asserts against.
  assert.throws(() => axisMatrix(4, 6, 'scale_factor', 1.5), /maps 4 to 7 rows/);
});

test('interpolatePosEmbed: skip only for the trained grid on a square image; CLS kept; differentiable', async () => {
  await initBackend('cpu');
  const D = 2;
  const pos = tf.concat([tf.tensor3d([[[7, -7]]]), grid(4, D).expandDims(0)], 1); // [1, 17, 2]
  assert.equal(interpolatePosEmbed(pos, 4, 4, 32, 32, 'scale_factor', 0.1), pos);
  // v1 with a 32x39 image: the grid is 4x4 but H != W, so the official code interpolates (scale 4.1/4, not identity).
  const shifted = interpolatePosEmbed(pos, 4, 4, 32, 39, 'scale_factor', 0.1);
  assert.deepEqual(shifted.shape, [1, 17, 2]);
  assert.deepEqual(Array.from(shifted.slice([0, 0, 0], [1, 1, 2]).dataSync()), [7, -7]);
  assert.ok(tf.max(tf.abs(tf.sub(shifted, pos))).dataSync()[0]! > 1e-3);
  // Gradient of sum(resized) w.r.t. the table: every source cell contributes; CLS gets exactly 1 per channel.
  const v = tf.variable(pos);
  const { grads } = tf.variableGrads(() => tf.sum(interpolatePosEmbed(v, 6, 5, 84, 70, 'size_antialias', 0)) as tf.Scalar, [v]);
  const g = grads[v.name]!.dataSync();
  assert.equal(g[0], 1);
  assert.ok(Array.from(g).every((x) => x > 0), 'every position receives gradient');
  // Total weight = number of output cells (rows sum to 1): 1 + 30 per channel.
  assert.ok(Math.abs(Array.from(g).reduce((s, x) => s + x, 0) - 2 * 31) < 1e-4);
});
