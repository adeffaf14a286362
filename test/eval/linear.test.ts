import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/select.js';
import { savePth } from '../../src/checkpoint/index.js';
import type { HostTensor } from '../../src/checkpoint/types.js';
import { accuracy, headLogits, loadLinearHead, probeInput, saveLinearHead, trainLinearProbes } from '../../src/eval/linear.js';
import type { Matrix } from '../../src/util/matrix.js';
import { Rng } from '../../src/util/rng.js';

await initBackend('cpu');

// layers:2 features of a D=2 model: [cls_{L-1}, cls_L, avg_L]
const D = 2;
const row = [1, 2, 3, 4, 5, 6];
const layers: Matrix = { data: Float32Array.from(row), rows: 1, cols: 6 };

test('probe inputs: dinov2 concatenation and the dino v1 interleaved order', () => {
  assert.deepEqual(Array.from(probeInput(layers, D, { nBlocks: 1, avgpool: false, layout: 'concat' }).data), [3, 4]);
  assert.deepEqual(Array.from(probeInput(layers, D, { nBlocks: 2, avgpool: false, layout: 'concat' }).data), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(probeInput(layers, D, { nBlocks: 1, avgpool: true, layout: 'concat' }).data), [3, 4, 5, 6]);
  assert.deepEqual(Array.from(probeInput(layers, D, { nBlocks: 2, avgpool: true, layout: 'concat' }).data), [1, 2, 3, 4, 5, 6]);
  // v1: stack(cls, avg) on a last dim, flatten -> c0 a0 c1 a1
  assert.deepEqual(Array.from(probeInput(layers, D, { nBlocks: 1, avgpool: true, layout: 'interleaved' }).data), [3, 5, 4, 6]);
  assert.throws(() => probeInput(layers, D, { nBlocks: 3, avgpool: false, layout: 'concat' }), /only 2/);
});

test('released head files: v2 weight/bias, v1 module.linear.* with the interleaved input, and our own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-linear-'));
  try {
    const t = (shape: number[], data: number[]): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });
    // class 0 reads the first input, class 1 the second
    const w = [1, 0, 0, 0, 0, 1, 0, 0];
    savePth(join(dir, 'v2.pth'), new Map([['weight', t([2, 4], w)], ['bias', t([2], [0, 0.5])]]));
    const v2 = loadLinearHead(join(dir, 'v2.pth'), D, 'dinov2');
    assert.deepEqual([v2.nBlocks, v2.avgpool, v2.layout], [1, true, 'concat']);
    assert.deepEqual(Array.from(headLogits(v2, layers, D).data), [3, 4.5]); // input [3,4,5,6]
    savePth(join(dir, 'v1.pth'), new Map([['module.linear.weight', t([2, 4], w)], ['module.linear.bias', t([2], [0, 0])]]));
    const v1 = loadLinearHead(join(dir, 'v1.pth'), D, 'dino');
    assert.deepEqual([v1.nBlocks, v1.avgpool, v1.layout], [1, true, 'interleaved']);
    assert.deepEqual(Array.from(headLogits(v1, layers, D).data), [3, 5]); // input [3,5,4,6]
    saveLinearHead(join(dir, 'ours.safetensors'), { ...v2, nBlocks: 2, avgpool: false, inDim: 4 });
    const ours = loadLinearHead(join(dir, 'ours.safetensors'), D, 'dinov2');
    assert.deepEqual([ours.nBlocks, ours.avgpool], [2, false]);
    assert.deepEqual(Array.from(headLogits(ours, layers, D).data), [1, 2.5]); // input [1,2,3,4]
    assert.throws(() => loadLinearHead(join(dir, 'v2.pth'), 3, 'dinov2'), /multiple of the model width/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('accuracy ranks ties to the lower class', () => {
  const logits: Matrix = { data: Float32Array.from([1, 1, 0, 0, 0, 0, 2, 0, 0, 0]), rows: 2, cols: 5 };
  assert.deepEqual(accuracy(logits, [1, 1]), { top1: 50, top5: 100 });
});

test('the probe grid learns a linearly separable toy set', () => {
  const rng = new Rng(1);
  const C = 3;
  const make = (n: number) => {
    const data = new Float32Array(n * 3 * 4); // layers:2 with D=4 -> 12 wide
    const labels: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = i % C;
      labels.push(c);
      for (let j = 0; j < 12; j++) data[i * 12 + j] = rng.normal(0, 0.3) + (j % 4 === c ? 2 : 0);
    }
    return { m: { data, rows: n, cols: 12 } as Matrix, labels };
  };
  const tr = make(150);
  const te = make(60);
  const r = trainLinearProbes(tr.m, tr.labels, te.m, te.labels, { embedDim: 4, numClasses: C, nBlocksList: [1, 2], learningRates: [0.01, 1], epochs: 15, batchSize: 16 });
  assert.equal(r.results.length, 2 * 2 * 2);
  assert.equal(r.best.top1, 100);
  const small = r.results.find((x) => x.lr === 0.01 && x.nBlocks === 1 && !x.avgpool)!;
  const big = r.results.find((x) => x.lr === 1 && x.nBlocks === 1 && !x.avgpool)!;
  assert.ok(big.finalLoss < small.finalLoss && big.finalLoss < 0.2, `loss ${big.finalLoss} vs ${small.finalLoss}`);
  assert.equal(accuracy(headLogits(r.bestHead, te.m, 4), te.labels).top1, 100);
});
