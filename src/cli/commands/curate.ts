// `dinots curate`: DINOv2-style data curation of an uncurated image pool (LVD-142M recipe, whose code was never
// released: dinov2#24). Steps, each resumable in --work: embed (CLS of --model), dedup (k-NN graph + union-find,
// plus removal of near-copies of --eval sets), cluster (hierarchical k-means), retrieve (images near the --seed set,
// or balanced sampling over clusters), report (stats.json + report/index.html).
import type { Command } from 'commander';
import { initBackend, type BackendName } from '../../backend/select.js';
import { runCuration, type RetrieveMode } from '../../curation/pipeline.js';
import { parseSteps, STEP_NAMES } from '../../curation/steps.js';
import { datasetThumbnail, modelEmbedder, pixelEmbedder } from '../../curation/embed.js';
import { DEFAULT_DEDUP_THRESHOLD, DEFAULT_EVAL_THRESHOLD, PIXEL_DEDUP_THRESHOLD, PIXEL_EVAL_THRESHOLD } from '../../curation/dedup.js';

interface CurateCliOptions {
  pool?: string;
  seed?: string;
  eval: string[];
  model?: string;
  work: string;
  steps: string;
  budget?: number;
  dedupThreshold?: number;
  evalThreshold?: number;
  neighbours: number;
  index: string;
  keep: string;
  clusters?: string;
  resample?: string;
  iters: number;
  mode?: string;
  kPerSeed?: number;
  clustersPerSeed: number;
  batchSize: number;
  cropSize?: number;
  randomSeed: number;
  force: boolean;
}

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${v}'`);
    return n;
  };
}

export function register(program: Command): void {
  program
    .command('curate')
    .description('curate an image pool as in DINOv2: embed, deduplicate, cluster, retrieve images near a seed set, report')
    .option('--pool <spec>', 'uncurated images: folder, list:FILE, FILE.txt or mnist:train[:N]')
    .option('--seed <spec>', 'curated seed images whose look the curated set should have')
    .option('--eval <spec>', 'evaluation set whose near-copies are removed from the pool (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--model <ckpt|name>', "embedding model: a checkpoint, a named config (random init), or 'pixels' (16x16 thumbnail baseline)")
    .requiredOption('--work <dir>', 'work folder (tables, stats, report); steps resume from what is there')
    .option('--steps <list>', `steps to run, comma-separated (${STEP_NAMES.join(',')})`, STEP_NAMES.join(','))
    .option('--budget <n>', 'size of the curated set', int('--budget'))
    .option('--dedup-threshold <cos>', `cosine similarity at which two pool images are duplicates (default ${DEFAULT_DEDUP_THRESHOLD}; ${PIXEL_DEDUP_THRESHOLD} with --model pixels)`, num('--dedup-threshold'))
    .option('--eval-threshold <cos>', `cosine similarity to an --eval image at which a pool image is dropped (default ${DEFAULT_EVAL_THRESHOLD}; ${PIXEL_EVAL_THRESHOLD} with --model pixels)`, num('--eval-threshold'))
    .option('--neighbours <k>', 'neighbours per image in the duplicate graph', int('--neighbours'), 16)
    .option('--index <kind>', 'nearest-neighbour search: exact (blocked matmul), ann (usearch HNSW) or auto (ann above 1M)', 'auto')
    .option('--keep <which>', 'survivor of a duplicate group: central or first', 'central')
    .option('--clusters <list>', 'k-means clusters per level, finest first, e.g. 1000,100 (default: one level of sqrt(n))')
    .option('--resample <list>', 'per level: re-fit on the n points closest to each centroid (10 steps), e.g. 10,3 (default: off)')
    .option('--iters <n>', 'k-means iterations', int('--iters'), 20)
    .option('--mode <mode>', 'retrieval: samples (k-NN of seeds), clusters (clusters near seeds), both, or balanced (hierarchical sampling, no seeds)')
    .option('--k-per-seed <k>', 'pool neighbours per seed image (default: enough to fill --budget, else 4)', int('--k-per-seed'))
    .option('--clusters-per-seed <n>', 'nearest pool clusters taken per seed image', int('--clusters-per-seed'), 1)
    .option('--batch-size <n>', 'embedding batch size', int('--batch-size'), 32)
    .option('--crop-size <n>', 'embedding input size (default: the model default)', int('--crop-size'))
    .option('--random-seed <n>', 'seed for k-means, sampling and random-init models', int('--random-seed'), 0)
    .option('--force', 'run the listed steps even when up to date', false)
    .action(async (o: CurateCliOptions, cmd: Command) => {
      const backend = (cmd.optsWithGlobals() as { backend?: string }).backend as BackendName | 'auto' | undefined;
      await initBackend(backend);
      const steps = parseSteps(o.steps);
      if (!['exact', 'ann', 'auto'].includes(o.index)) throw new Error(`--index must be exact, ann or auto, got '${o.index}'`);
      if (o.keep !== 'central' && o.keep !== 'first') throw new Error(`--keep must be central or first, got '${o.keep}'`);
      if (o.mode && !['samples', 'clusters', 'both', 'balanced'].includes(o.mode)) throw new Error(`--mode must be samples, clusters, both or balanced, got '${o.mode}'`);
      const clusters = o.clusters?.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 1) throw new Error(`--clusters: '${s}' is not a positive integer (example: --clusters 1000,100)`);
        return n;
      });
      const resample = o.resample?.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new Error(`--resample: '${s}' is not a non-negative integer (example: --resample 10,3)`);
        return n;
      });
      if (resample && clusters && resample.length !== clusters.length) throw new Error(`--resample has ${resample.length} entries but --clusters has ${clusters.length} levels`);
      let embedder;
      let modelId = o.model;
      if (steps.includes('embed')) {
        if (!o.model) throw new Error("step embed needs --model CKPT|NAME (or --model pixels for the thumbnail baseline)");
        if (o.model === 'pixels') {
          embedder = pixelEmbedder();
          modelId = 'pixels16';
        } else {
          let last = 0;
          const m = await modelEmbedder(o.model, {
            batchSize: o.batchSize,
            cropSize: o.cropSize,
            seed: o.randomSeed,
            onProgress: (done, total) => {
              if (done === total || Date.now() - last > 5000) {
                last = Date.now();
                process.stderr.write(`embed: ${done}/${total}\n`);
              }
            },
          });
          embedder = m.embedder;
          modelId = m.modelId;
        }
      }
      const res = await runCuration({
        work: o.work,
        steps,
        pool: o.pool,
        seed: o.seed,
        eval: o.eval,
        modelId,
        embedder,
        thumbnails: datasetThumbnail(),
        budget: o.budget,
        dedupThreshold: o.dedupThreshold ?? (o.model === 'pixels' ? PIXEL_DEDUP_THRESHOLD : DEFAULT_DEDUP_THRESHOLD),
        evalThreshold: o.evalThreshold ?? (o.model === 'pixels' ? PIXEL_EVAL_THRESHOLD : DEFAULT_EVAL_THRESHOLD),
        neighbours: o.neighbours,
        index: o.index as 'exact' | 'ann' | 'auto',
        keep: o.keep,
        clusters,
        kmeansIters: o.iters,
        resampleSizes: resample,
        mode: o.mode as RetrieveMode | undefined,
        kPerSeed: o.kPerSeed,
        clustersPerSeed: o.clustersPerSeed,
        seedValue: o.randomSeed,
        force: o.force,
        log: (m) => process.stderr.write(`${m}\n`),
      });
      process.stdout.write(`curate: ran [${res.ran.join(', ')}], skipped [${res.skipped.join(', ')}]; work folder ${o.work}\n`);
      if (res.records.retrieve) process.stdout.write(`curated ${String(res.records.retrieve.summary.curated)} images: ${o.work}/curated.csv\n`);
      if (res.records.report) process.stdout.write(`report: ${o.work}/report/index.html\n`);
    });
}
