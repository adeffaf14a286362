// `dinots linear`: linear probes on frozen features (official grid: last 1 or 4 blocks' CLS, with or without the
// mean patch token, × learning rates; SGD momentum 0.9, cosine), or inference with a released linear head
// (DINO v1 *_linearweights.pth, DINOv2 *_linear_head.pth / *_linear4_head.pth) or one saved by this command.
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { featuresFor, modelFor, startBackend } from '../common.js';
import { intList, positiveInt } from '../parsers.js';
import type { FeatureSet } from '../../eval/extract.js';
import { accuracy, headLogits, loadLinearHead, saveLinearHead, trainLinearProbes, DINOV2_LEARNING_RATES } from '../../eval/linear.js';

function numClassesOf(...sets: FeatureSet[]): number {
  let n = 0;
  for (const s of sets) {
    n = Math.max(n, s.meta.classes.length);
    for (const v of s.labels) n = Math.max(n, v + 1);
  }
  return n;
}

export function register(program: Command): void {
  program
    .command('linear')
    .description('linear probe on frozen features (official lr grid × 1/4 blocks × avgpool), or evaluate a released linear head')
    .requiredOption('--model <ckpt|name>', 'backbone checkpoint or named config')
    .option('--train <spec>', 'training set (dataset spec or a dinots extract folder made with --features layers:4)')
    .requiredOption('--test <spec>', 'evaluation set (the best classifier is chosen on it, as the official scripts do)')
    .option('--head <file>', 'evaluate this linear head instead of training (v1 *_linearweights.pth, v2 *_linear[4]_head.pth, or ours)')
    .option('--blocks <list>', 'numbers of last blocks whose CLS tokens are used', '1,4')
    .option('--lrs <list>', 'base learning rates (scaled by batch/256)', DINOV2_LEARNING_RATES.join(','))
    .option('--epochs <n>', 'training epochs over the precomputed features', positiveInt('--epochs'), 10)
    .option('--batch-size <n>', 'probe training batch size', positiveInt('--batch-size'), 128)
    .option('--crop <px>', 'crop size (default 224, or the model size for small models)', positiveInt('--crop'))
    .option('--out <dir>', 'write the best head (linear_head.safetensors) and results.json here')
    .option('--json', 'print the results as JSON')
    .action(async function (this: Command, o: { model: string; train?: string; test: string; head?: string; blocks: string; lrs: string; epochs: number; batchSize: number; crop?: number; out?: string; json?: boolean }) {
      await startBackend(this);
      const m = (await modelFor(o.model))!;
      const D = m.model.embedDim;
      const storedBlocks = Math.min(4, m.model.config.depth);
      const opts = { kind: { type: 'layers' as const, n: storedBlocks }, cropSize: o.crop, batchSize: 64 };
      const test = await featuresFor(o.test, m, opts, 'test');
      if (test.features.cols !== (storedBlocks + 1) * D) throw new Error(`${o.test}: features are ${test.features.cols} wide; linear needs layers:${storedBlocks} features of this model (${(storedBlocks + 1) * D})`);
      if (o.head) {
        const head = loadLinearHead(o.head, D, m.model.config.family);
        const logits = headLogits(head, test.features, D);
        const labelled = test.labels.every((v) => v >= 0);
        const acc = labelled ? accuracy(logits, test.labels) : null;
        const top = Array.from({ length: Math.min(test.features.rows, 20) }, (_, i) => {
          const row = Array.from(logits.data.subarray(i * logits.cols, (i + 1) * logits.cols));
          const order = row.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5);
          return { path: test.paths[i], label: test.labels[i], top5: order.map(([, c]) => c) };
        });
        const res = { head: o.head, input: { nBlocks: head.nBlocks, avgpool: head.avgpool, layout: head.layout }, numClasses: head.numClasses, accuracy: acc, predictions: top };
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 1)}\n`);
        else {
          process.stdout.write(`head ${o.head}: ${head.numClasses} classes, input ${head.nBlocks} block(s) CLS${head.avgpool ? ` + mean patch (${head.layout})` : ''}\n`);
          if (acc) process.stdout.write(`top-1 ${acc.top1.toFixed(2)}${acc.top5 !== null ? `  top-5 ${acc.top5.toFixed(2)}` : ''} on ${test.features.rows} images\n`);
          for (const p of top) process.stdout.write(`  ${p.path}: top-5 classes ${p.top5.join(', ')}${p.label! >= 0 ? ` (label ${p.label})` : ''}\n`);
        }
        return;
      }
      if (!o.train) throw new Error('--train is needed to train probes (or pass --head to evaluate a released head)');
      const train = await featuresFor(o.train, m, opts, 'train');
      if (train.labels.some((v) => v < 0) || test.labels.some((v) => v < 0)) throw new Error('linear probes need labelled train and test sets');
      const numClasses = numClassesOf(train, test);
      const t0 = performance.now();
      const r = trainLinearProbes(train.features, train.labels, test.features, test.labels, {
        embedDim: D,
        numClasses,
        nBlocksList: intList(o.blocks, '--blocks'),
        learningRates: o.lrs.split(',').map(Number),
        epochs: o.epochs,
        batchSize: o.batchSize,
        onEpoch: (e, loss) => process.stderr.write(`epoch ${e + 1}/${o.epochs}: mean loss over the grid ${loss.toFixed(4)}\n`),
      });
      const seconds = (performance.now() - t0) / 1000;
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        saveLinearHead(join(o.out, 'linear_head.safetensors'), r.bestHead);
        writeFileSync(join(o.out, 'results.json'), `${JSON.stringify({ model: m.description, train: o.train, test: o.test, numClasses, best: r.best, results: r.results, seconds }, null, 1)}\n`);
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ best: r.best, results: r.results, seconds }, null, 1)}\n`);
        return;
      }
      for (const x of r.results) process.stdout.write(`  ${x.name.padEnd(48)} top-1 ${x.top1.toFixed(2)}${x.top5 !== null ? `  top-5 ${x.top5.toFixed(2)}` : ''}  loss ${x.finalLoss.toFixed(4)}\n`);
      process.stdout.write(`best: ${r.best.name} top-1 ${r.best.top1.toFixed(2)} (${seconds.toFixed(1)} s)${o.out ? `; head saved to ${join(o.out, 'linear_head.safetensors')}` : ''}\n`);
    });
}
