// `dinots extract`: features of a dataset into a folder (safetensors + Arrow IPC + meta.json), resumable.
import type { Command } from 'commander';
import { parseDatasetSpec } from '../../data/datasets.js';
import { progressBar, startBackend, modelFor } from '../common.js';
import { positiveInt } from '../parsers.js';
import { extractFeatures } from '../../eval/extract.js';
import { parseFeatureKind } from '../../eval/features.js';

export function register(program: Command): void {
  program
    .command('extract')
    .description('extract features of a dataset with a backbone into DIR (features.safetensors, features.arrow, meta.json); resumable')
    .requiredOption('--model <ckpt|name>', 'checkpoint file/folder, or a named config for random weights (e.g. dinov2_vits14)')
    .requiredOption('--data <spec>', 'dataset: image folder (class subfolders = labels), list:FILE, FILE.txt, mnist:train, mnist:test[:N]')
    .requiredOption('--out <dir>', 'output folder; rerunning with the same settings resumes after the last finished chunk')
    .option('--features <kind>', 'cls | patch (mean patch token) | cls+avgpool | layers:N (CLS of the last N blocks + mean patch)', 'cls')
    .option('--aspect <mode>', "'crop' (resize + centre crop) or 'native' (keep the aspect ratio, one image per batch)", 'crop')
    .option('--crop <px>', 'crop size (default 224, or the model size for small models)', positiveInt('--crop'))
    .option('--resize <px>', 'shorter side before the crop (default crop*256/224)', positiveInt('--resize'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--workers <n>', 'loader worker threads (default: one per core, at most 8)', (v) => parseInt(v, 10))
    .option('--chunk-size <n>', 'samples per resumable chunk file', positiveInt('--chunk-size'), 4096)
    .option('--keep-chunks', 'keep the chunk files after merging')
    .action(async function (this: Command, o: { model: string; data: string; out: string; features: string; aspect: string; crop?: number; resize?: number; batchSize: number; workers?: number; chunkSize: number; keepChunks?: boolean }) {
      if (o.aspect !== 'crop' && o.aspect !== 'native') throw new Error(`--aspect must be crop or native, got '${o.aspect}'`);
      const kind = parseFeatureKind(o.features);
      const backend = await startBackend(this);
      const m = (await modelFor(o.model))!;
      const ds = await parseDatasetSpec(o.data);
      const bar = progressBar(`extract ${ds.name}`);
      const t0 = performance.now();
      const set = await extractFeatures(m.model, ds, {
        kind,
        aspect: o.aspect,
        cropSize: o.crop,
        resizeSize: o.resize,
        batchSize: o.batchSize,
        workers: o.workers,
        outDir: o.out,
        chunkSize: o.chunkSize,
        keepChunks: o.keepChunks,
        modelName: m.description,
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.stop();
      const s = (performance.now() - t0) / 1000;
      process.stdout.write(`wrote ${set.features.rows} x ${set.features.cols} ${set.meta.features} features to ${o.out} (${set.meta.transform}; ${backend}; ${s.toFixed(1)} s)\n`);
    });
}
