// `dinots knn`: the official weighted k-NN evaluation (dino eval_knn.py / dinov2 eval/knn.py).
import type { Command } from 'commander';
import { featuresFor, modelFor, startBackend } from '../common.js';
import { intList, positiveFloat, positiveInt } from '../parsers.js';
import { parseFeatureKind } from '../../eval/features.js';
import { knnEvaluate, knnFewShot, DEFAULT_KS } from '../../eval/knn.js';

export function register(program: Command): void {
  program
    .command('knn')
    .description('weighted k-NN classification: cosine top-k over L2-normalised features, votes exp(sim/T)')
    .option('--model <ckpt|name>', 'backbone (needed unless --train/--test are folders written by dinots extract)')
    .requiredOption('--train <spec>', "training set: dataset spec (folder, list:FILE, mnist:train) or a 'dinots extract' folder")
    .requiredOption('--test <spec>', 'test set: same forms as --train')
    .option('--k <list>', 'numbers of neighbours, comma-separated', DEFAULT_KS.join(','))
    .option('--T <temp>', 'temperature of the vote weights', positiveFloat('--T'), 0.07)
    .option('--shots <list>', 'also evaluate on N training images per class (comma-separated N)')
    .option('--tries <n>', 'random few-shot subsets per N (averaged)', positiveInt('--tries'), 1)
    .option('--features <kind>', 'feature when computing from a dataset: cls (official), patch, cls+avgpool, layers:N', 'cls')
    .option('--crop <px>', 'crop size (default 224, or the model size for small models)', positiveInt('--crop'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--per-class', 'print the per-class top-1 accuracy')
    .option('--json', 'print the results as JSON')
    .action(async function (this: Command, o: { model?: string; train: string; test: string; k: string; T: number; shots?: string; tries: number; features: string; crop?: number; batchSize: number; perClass?: boolean; json?: boolean }) {
      const ks = intList(o.k, '--k');
      const shots = o.shots ? intList(o.shots, '--shots') : [];
      await startBackend(this);
      const m = await modelFor(o.model);
      const opts = { kind: parseFeatureKind(o.features), cropSize: o.crop, batchSize: o.batchSize };
      const train = await featuresFor(o.train, m, opts, 'train');
      const test = await featuresFor(o.test, m, opts, 'test');
      if (train.labels.some((v) => v < 0) || test.labels.some((v) => v < 0)) throw new Error('k-NN needs labelled train and test sets (class subfolders, list files with labels, or mnist)');
      const maxLabel = Math.max(train.labels.reduce((a, v) => Math.max(a, v), 0), test.labels.reduce((a, v) => Math.max(a, v), 0));
      const numClasses = Math.max(train.meta.classes.length, test.meta.classes.length, maxLabel + 1);
      const t0 = performance.now();
      const full = knnEvaluate(train.features, train.labels, test.features, test.labels, { k: ks, T: o.T, numClasses });
      const seconds = (performance.now() - t0) / 1000;
      const few = shots.map((n) => knnFewShot(train.features, train.labels, test.features, test.labels, n, { k: ks, T: o.T, numClasses, tries: o.tries }));
      const classes = train.meta.classes.length ? train.meta.classes : Array.from({ length: full.numClasses }, (_, i) => String(i));
      if (o.json) {
        const out = {
          model: train.meta.model,
          train: { spec: o.train, count: full.numTrain },
          test: { spec: o.test, count: full.numTest },
          T: o.T,
          numClasses: full.numClasses,
          results: full.results.map((r) => ({ k: r.k, kUsed: r.kUsed, top1: r.top1, top5: r.top5, meanPerClassTop1: r.meanPerClassTop1, perClassTop1: Object.fromEntries(r.perClassTop1.map((v, c) => [classes[c] ?? String(c), Number.isNaN(v) ? null : v])) })),
          fewShot: few,
          seconds,
        };
        process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
        return;
      }
      process.stdout.write(`k-NN (T=${o.T}) train ${full.numTrain}, test ${full.numTest}, ${full.numClasses} classes, ${seconds.toFixed(2)} s\n`);
      for (const r of full.results) {
        process.stdout.write(`  k=${String(r.k).padStart(3)}${r.kUsed !== r.k ? ` (used ${r.kUsed})` : ''}  top-1 ${r.top1.toFixed(2)}  top-5 ${r.top5.toFixed(2)}  mean per-class top-1 ${r.meanPerClassTop1.toFixed(2)}\n`);
        if (o.perClass) r.perClassTop1.forEach((v, c) => !Number.isNaN(v) && process.stdout.write(`      ${(classes[c] ?? String(c)).padEnd(20)} ${v.toFixed(2)}\n`));
      }
      for (const f of few) {
        process.stdout.write(`  ${f.nPerClass} per class (${f.tries} tries):\n`);
        for (const r of f.results) process.stdout.write(`    k=${String(r.k).padStart(3)}  top-1 ${r.top1.toFixed(2)}  top-5 ${r.top5.toFixed(2)}\n`);
      }
    });
}
