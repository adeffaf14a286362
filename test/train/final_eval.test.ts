// The end of a run on labelled data: the full-split evaluation (teacher and student, CLS and CLS+avgpool, raw pixels,
// linear probe) and the attention-object score before and after, in the result, summary.json and the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeRunNetworks, trainRun } from '../../src/train/run.js';
import { TINY } from './tiny.js';
import { loadViT } from '../../src/checkpoint/load_model.js';

test('a finished run evaluates every backbone and feature on the full splits, next to raw pixels', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dinots-final-'));
  try {
    const labelled = { knn_train: 'mnist:train:300', knn_test: 'mnist:test:100', knn_train_size: 100, knn_test_size: 50, knn_evals: 0 };
    const r = await trainRun({ layers: [{ ...TINY, ...labelled }] }, { out: join(root, 'a'), progress: false, log: () => {}, handleSigint: false });
    disposeRunNetworks(r.nets);
    assert.equal(r.status, 'done');
    const ev = r.evaluation!;
    assert.deepEqual(ev.knn.map((k) => k.label), ['teacher CLS', 'teacher CLS+avgpool', 'student CLS', 'student CLS+avgpool', 'raw pixels']);
    for (const k of ev.knn) assert.ok(k.top1 > 10 && k.top1 <= 100, `${k.label} ${k.top1}`);
    assert.match(ev.protocol, /all 100 images of mnist:test:100 against all 300 of mnist:train:300/);
    assert.ok(ev.linear && ev.linear.top1 > 10);
    assert.equal(ev.attention.length, 2);
    assert.ok(r.attentionInitial && r.attentionInitial.images > 0);
    const summary = JSON.parse(readFileSync(join(root, 'a', 'summary.json'), 'utf8'));
    assert.equal(summary.full_knn_top1['raw pixels'], ev.knn[4]!.top1);
    assert.equal(summary.attention_jaccard_initial, r.attentionInitial.meanHeads);
    assert.equal(summary.attention_jaccard_final, ev.attention[0]!.score.meanHeads);
    assert.match(readFileSync(join(root, 'a', 'report.html'), 'utf8'), /Final evaluation \(full splits\)[\s\S]*k-NN student CLS\+avgpool/);
    // A finished run folder stands for its exported teacher backbone wherever a checkpoint is expected.
    const loaded = await loadViT(join(root, 'a'));
    assert.equal(loaded.config.embedDim, 16);
    loaded.model.dispose();
    // Without labelled splits (or with final_eval off) there is nothing to evaluate.
    const off = await trainRun({ layers: [{ ...TINY, ...labelled, final_eval: false }] }, { out: join(root, 'b'), progress: false, log: () => {}, handleSigint: false });
    disposeRunNetworks(off.nets);
    assert.equal(off.evaluation, null);
    assert.equal(off.attentionInitial, null);
    const unfinished = await trainRun({ layers: [{ ...TINY, final_eval: false }] }, { out: join(root, 'c'), stopAfter: 1, progress: false, log: () => {}, handleSigint: false });
    disposeRunNetworks(unfinished.nets);
    await assert.rejects(loadViT(join(root, 'c')), /run has not finished .*dinots train --resume --out/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
