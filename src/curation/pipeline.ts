// The curation pipeline over a work folder: embed -> dedup -> cluster -> retrieve -> report. Every step reads the
// Arrow tables of the steps before it, writes its own, and is skipped when already done with the same inputs.
//
// Work folder:
//   pool.arrow, seed.arrow, eval_<i>.arrow   path + embedding (L2-normalised CLS)            [embed]
//   dedup.arrow                              per pool row: status, group, keep, scores        [dedup]
//   clusters.arrow, centroids_<level>.arrow  per pool row: cluster at each level; centroids   [cluster]
//   curated.arrow, curated.csv               path, pool index, reason, score, seed, cluster   [retrieve]
//   stats.json, report/index.html            summary and picture grids                       [report]
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Matrix, l2NormalizeRows, makeMatrix, selectRows } from '../util/matrix.js';
import { deduplicate, findEvalOverlap, DEFAULT_DEDUP_THRESHOLD, DEFAULT_EVAL_THRESHOLD, type SearchIndex } from './dedup.js';
import { hierarchicalKMeans, hierarchicalSample, type HKMeansResult } from './hkmeans.js';
import { retrieveByClusters, retrieveBySamples, mergeRetrieved, type Retrieved } from './retrieve.js';
import { readTable, writeTable } from './tables.js';
import { fingerprint, isUpToDate, requireRecord, writeRecord, readRecord, type StepName, type StepRecord } from './steps.js';
import { writeReport, type ThumbnailSource } from './report.js';

/**
 * Embeds every image of a dataset spec; rows need not be normalised (the pipeline normalises them). `cacheDir` is a
 * folder the embedder may use to resume an interrupted extraction.
 */
export type Embedder = (spec: string, role: 'pool' | 'seed' | 'eval', cacheDir?: string) => Promise<{ paths: string[]; embeddings: Matrix }>;

export type RetrieveMode = 'samples' | 'clusters' | 'both' | 'balanced';

export interface CurateOptions {
  work: string;
  steps: StepName[];
  pool?: string;
  seed?: string;
  eval?: string[];
  /** Identifies the embedding model in fingerprints (checkpoint path + size/mtime, or a name). */
  modelId?: string;
  embedder?: Embedder;
  thumbnails?: ThumbnailSource;
  budget?: number;
  dedupThreshold?: number;
  evalThreshold?: number;
  /** Neighbours per image in the dedup graph. */
  neighbours?: number;
  /** 'auto': exact blocked search up to `annAbove` vectors, usearch beyond. */
  index?: SearchIndex | 'auto';
  annAbove?: number;
  keep?: 'central' | 'first';
  /** Clusters per level, finest first; default one level of about sqrt(n) clusters. */
  clusters?: number[];
  kmeansIters?: number;
  /** Resampling per level (points closest to each centroid), as in hierarchical k-means with resampling. */
  resampleSizes?: number[];
  mode?: RetrieveMode;
  kPerSeed?: number;
  clustersPerSeed?: number;
  seedValue?: number;
  /** Re-run the listed steps even when up to date. */
  force?: boolean;
  log?: (msg: string) => void;
}

export interface CurateSummary {
  ran: StepName[];
  skipped: StepName[];
  records: Partial<Record<StepName, StepRecord>>;
}

/** size + mtime of a path (recursively for folders): changes when the dataset's files change. */
export function pathSignature(spec: string): string {
  const p = resolve(spec);
  if (!existsSync(p)) return spec; // not a path (e.g. a named dataset): the spec itself is the identity
  const parts: string[] = [];
  const walk = (q: string) => {
    const st = statSync(q);
    if (st.isDirectory()) for (const n of readdirSync(q).sort()) walk(join(q, n));
    else parts.push(`${q}:${st.size}:${Math.round(st.mtimeMs)}`);
  };
  walk(p);
  return fingerprint(parts);
}

function normalise(m: Matrix): Matrix {
  return l2NormalizeRows(m);
}

function loadEmbeddings(work: string, name: string): { paths: string[]; x: Matrix } {
  const t = readTable(join(work, `${name}.arrow`));
  return { paths: t.strings('path'), x: t.matrix('embedding') };
}

export async function runCuration(opts: CurateOptions): Promise<CurateSummary> {
  const work = opts.work;
  mkdirSync(work, { recursive: true });
  const log = opts.log ?? (() => {});
  const summary: CurateSummary = { ran: [], skipped: [], records: {} };
  const evalCount = () => (readRecord(work, 'embed')?.summary.evalSets as number | undefined) ?? 0;
  const indexFor = (n: number): SearchIndex =>
    opts.index === 'exact' || opts.index === 'ann' ? opts.index : n > (opts.annAbove ?? 1_000_000) ? 'ann' : 'exact';

  const run = async (step: StepName, fpInput: unknown, body: () => Promise<{ outputs: string[]; summary: Record<string, unknown> }>) => {
    const fp = fingerprint(fpInput);
    if (!opts.force && isUpToDate(work, step, fp)) {
      log(`${step}: up to date, skipped`);
      summary.skipped.push(step);
      summary.records[step] = readRecord(work, step)!;
      return;
    }
    log(`${step}: running`);
    const t0 = performance.now();
    const out = await body();
    const rec: StepRecord = {
      step,
      fingerprint: fp,
      finishedAt: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000,
      outputs: out.outputs,
      summary: out.summary,
    };
    writeRecord(work, rec);
    summary.ran.push(step);
    summary.records[step] = rec;
    log(`${step}: done in ${rec.seconds.toFixed(1)} s ${JSON.stringify(out.summary)}`);
    // A useless result is called out with what was measured and the fix (summary.warnings), not returned silently.
    for (const w of (out.summary.warnings as string[] | undefined) ?? []) log(`${step}: warning: ${w}`);
  };
  const upstream = (step: StepName, by: StepName) => requireRecord(work, step, by).fingerprint;

  if (opts.steps.includes('embed')) {
    if (!opts.pool) throw new Error('step embed needs --pool SPEC (the uncurated images)');
    if (!opts.embedder) throw new Error('step embed needs a model (--model CKPT|NAME)');
    const embedder = opts.embedder;
    const specs = { pool: opts.pool, seed: opts.seed, eval: opts.eval ?? [] };
    await run(
      'embed',
      {
        model: opts.modelId,
        pool: [specs.pool, pathSignature(specs.pool)],
        seed: specs.seed ? [specs.seed, pathSignature(specs.seed)] : null,
        eval: specs.eval.map((e) => [e, pathSignature(e)]),
      },
      async () => {
        const outputs: string[] = [];
        const counts: Record<string, number> = {};
        const jobs: [string, string, 'pool' | 'seed' | 'eval'][] = [['pool', specs.pool, 'pool']];
        if (specs.seed) jobs.push(['seed', specs.seed, 'seed']);
        specs.eval.forEach((e, i) => jobs.push([`eval_${i}`, e, 'eval']));
        let dim = 0;
        for (const [name, spec, role] of jobs) {
          const { paths, embeddings } = await embedder(spec, role, join(work, 'features', name));
          if (paths.length !== embeddings.rows) throw new Error(`embedder returned ${paths.length} paths but ${embeddings.rows} embeddings for ${spec}`);
          if (paths.length === 0) throw new Error(`${role} set '${spec}' has no images`);
          dim = embeddings.cols;
          writeTable(join(work, `${name}.arrow`), { path: paths, embedding: normalise(embeddings) });
          outputs.push(`${name}.arrow`);
          counts[name] = paths.length;
          log(`embed: ${name} ${paths.length} images, dim ${embeddings.cols}`);
        }
        return { outputs, summary: { ...counts, dim, evalSets: specs.eval.length, model: opts.modelId } };
      },
    );
  }

  if (opts.steps.includes('dedup')) {
    const embedFp = upstream('embed', 'dedup');
    const params = {
      threshold: opts.dedupThreshold ?? DEFAULT_DEDUP_THRESHOLD,
      evalThreshold: opts.evalThreshold ?? DEFAULT_EVAL_THRESHOLD,
      k: opts.neighbours ?? 16,
      keep: opts.keep ?? 'central',
      index: opts.index ?? 'auto',
    };
    await run('dedup', { embedFp, ...params }, async () => {
      const { paths, x } = loadEmbeddings(work, 'pool');
      const index = indexFor(x.rows);
      // Relative dedup against every evaluation set first: the closest evaluation image of each pool image.
      const evalScore = new Float32Array(x.rows).fill(-1);
      const evalMatch: string[] = new Array(x.rows).fill('');
      let evalRemoved = 0;
      for (let e = 0; e < evalCount(); e++) {
        const ev = loadEmbeddings(work, `eval_${e}`);
        const ov = findEvalOverlap(x, ev.x, { threshold: params.evalThreshold, index });
        for (let i = 0; i < x.rows; i++) {
          if (ov.score[i]! > evalScore[i]!) {
            evalScore[i] = ov.score[i]!;
            evalMatch[i] = ev.paths[ov.match[i]!] ?? '';
          }
        }
      }
      // Minutes at 100k+ vectors: say how far the k-NN graph is, every 10%.
      const t0 = performance.now();
      let shown = 0;
      const onProgress = (done: number, total: number) => {
        if (x.rows < 50_000 || done / total - shown < 0.1) return;
        shown = done / total;
        log(`dedup: ${index} k-NN graph ${(shown * 100).toFixed(0)}% after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      };
      const dd = deduplicate(x, { threshold: params.threshold, k: params.k, keep: params.keep, index, onProgress });
      const group = new Int32Array(x.rows).fill(-1);
      dd.groups.forEach((g, gi) => g.forEach((r) => (group[r] = gi)));
      const status = Array.from({ length: x.rows }, (_, i) => {
        if (evalScore[i]! >= params.evalThreshold) return 'eval-overlap';
        return dd.keep[i] ? 'kept' : 'duplicate';
      });
      evalRemoved = status.filter((s) => s === 'eval-overlap').length;
      const removedShare = 1 - status.filter((s) => s === 'kept').length / x.rows;
      const largest = dd.groups.reduce((m, g) => Math.max(m, g.length), 0);
      const warnings: string[] = [];
      if (largest > Math.max(0.2 * x.rows, 10)) {
        warnings.push(`${largest} images (${((largest / x.rows) * 100).toFixed(0)}% of the pool) chained into one duplicate group at cosine >= ${params.threshold}: the embedding does not tell these images apart (a random-init or barely trained model?); raise --dedup-threshold, or use --model pixels or a stronger embedding`);
      } else if (removedShare > 0.5) {
        warnings.push(`${(removedShare * 100).toFixed(0)}% of the pool removed as duplicates at cosine >= ${params.threshold}: the embedding may be collapsed or the threshold too low; raise --dedup-threshold, or use --model pixels or a stronger embedding`);
      }
      writeTable(join(work, 'dedup.arrow'), {
        path: paths,
        status,
        group,
        keeper: Array.from({ length: x.rows }, (_, i) => group[i]! >= 0 && dd.keepers[group[i]!] === i),
        nearest_score: dd.nearestScore,
        eval_score: evalScore,
        eval_match: evalMatch,
      });
      return {
        outputs: ['dedup.arrow'],
        summary: {
          pool: x.rows,
          index,
          threshold: params.threshold,
          evalThreshold: params.evalThreshold,
          edges: dd.edges,
          groups: dd.groups.length,
          duplicatesRemoved: status.filter((s) => s === 'duplicate').length,
          evalOverlapRemoved: evalRemoved,
          kept: status.filter((s) => s === 'kept').length,
          largestGroup: largest,
          warnings,
        },
      };
    });
  }

  /** Pool rows that survived dedup (all rows when dedup was not run). */
  const eligibleMask = (n: number): Uint8Array => {
    const mask = new Uint8Array(n).fill(1);
    if (!readRecord(work, 'dedup') || !existsSync(join(work, 'dedup.arrow'))) return mask;
    const status = readTable(join(work, 'dedup.arrow')).strings('status');
    status.forEach((s, i) => (mask[i] = s === 'kept' ? 1 : 0));
    return mask;
  };
  const dedupFp = () => readRecord(work, 'dedup')?.fingerprint ?? null;

  if (opts.steps.includes('cluster')) {
    const embedFp = upstream('embed', 'cluster');
    const params = { clusters: opts.clusters ?? null, iters: opts.kmeansIters ?? 20, seed: opts.seedValue ?? 0, resample: opts.resampleSizes ?? null };
    await run('cluster', { embedFp, dedupFp: dedupFp(), ...params }, async () => {
      const { x } = loadEmbeddings(work, 'pool');
      const mask = eligibleMask(x.rows);
      const rows: number[] = [];
      mask.forEach((m, i) => m && rows.push(i));
      const sub = selectRows(x, rows);
      const levels = params.clusters ?? [Math.max(1, Math.min(sub.rows, Math.round(Math.sqrt(sub.rows))))];
      if (levels[0]! > sub.rows) {
        throw new Error(`cluster: ${levels[0]} clusters but only ${sub.rows} pool images survived dedup (see ${join(work, 'dedup.json')}); lower --clusters or raise --dedup-threshold`);
      }
      const h = await hierarchicalKMeans(sub, {
        levels,
        iters: params.iters,
        seed: params.seed,
        resampleSizes: params.resample ?? undefined,
        onLevel: (l, inertia) => log(`cluster: level ${l + 1} (${levels[l]} clusters) inertia ${inertia.toFixed(2)}`),
      });
      const cols: Record<string, Int32Array> = {};
      let labels = h.levels[0]!.assignments;
      h.levels.forEach((lev, l) => {
        if (l > 0) labels = labels.map((c) => lev.assignments[c]!);
        const full = new Int32Array(x.rows).fill(-1);
        rows.forEach((r, j) => (full[r] = labels[j]!));
        cols[`level${l}`] = full;
      });
      writeTable(join(work, 'clusters.arrow'), { pool_index: Int32Array.from({ length: x.rows }, (_, i) => i), ...cols });
      const outputs = ['clusters.arrow'];
      h.levels.forEach((lev, l) => {
        writeTable(join(work, `centroids_${l}.arrow`), { parent: h.levels[l + 1]?.assignments ?? new Int32Array(lev.centroids.rows).fill(-1), centroid: lev.centroids });
        outputs.push(`centroids_${l}.arrow`);
      });
      const sizes = new Int32Array(levels[0]!);
      for (const a of h.levels[0]!.assignments) sizes[a]!++;
      const tiny = sizes.filter((v) => v <= 1).length;
      const warnings = tiny > sizes.length / 2 && sizes.length > 1
        ? [`${tiny} of ${sizes.length} clusters hold 0 or 1 images: the embedding or the cluster count does not fit this pool; lower --clusters, or use a stronger embedding`]
        : [];
      return { outputs, summary: { clustered: sub.rows, levels, smallestCluster: sizes.reduce((m, v) => Math.min(m, v), Infinity), largestCluster: sizes.reduce((m, v) => Math.max(m, v), 0), warnings } };
    });
  }

  if (opts.steps.includes('retrieve')) {
    const mode = opts.mode ?? (opts.seed || existsSync(join(work, 'seed.arrow')) ? 'samples' : 'balanced');
    const embedFp = upstream('embed', 'retrieve');
    const needsClusters = mode === 'clusters' || mode === 'both' || mode === 'balanced';
    const clusterFp = needsClusters ? upstream('cluster', 'retrieve') : null;
    const params = { mode, budget: opts.budget ?? null, kPerSeed: opts.kPerSeed ?? null, clustersPerSeed: opts.clustersPerSeed ?? 1, seed: opts.seedValue ?? 0, index: opts.index ?? 'auto' };
    if (mode === 'balanced' && opts.budget === undefined) throw new Error('retrieve --mode balanced needs --budget N (how many images to keep)');
    await run('retrieve', { embedFp, dedupFp: dedupFp(), clusterFp, ...params }, async () => {
      const { paths, x } = loadEmbeddings(work, 'pool');
      const eligible = eligibleMask(x.rows);
      const budget = opts.budget;
      let seedPaths: string[] = [];
      let seeds: Matrix = makeMatrix(0, x.cols);
      if (mode !== 'balanced') {
        if (!existsSync(join(work, 'seed.arrow'))) throw new Error(`retrieve --mode ${mode} needs seed images: run embed with --seed SPEC`);
        ({ paths: seedPaths, x: seeds } = loadEmbeddings(work, 'seed'));
      }
      const clusters = needsClusters ? readTable(join(work, 'clusters.arrow')).int32('level0') : null;
      // Rows left out of clustering (e.g. dedup re-run since) cannot be picked by cluster-based modes.
      if (clusters && mode !== 'samples') clusters.forEach((c, i) => c < 0 && (eligible[i] = 0));
      let picked: Retrieved;
      if (mode === 'balanced') {
        const h = loadHierarchy(work, clusters!, readRecord(work, 'cluster')!.summary.levels as number[]);
        const rows = hierarchicalSample(h, budget!, params.seed, eligible);
        picked = { index: rows, score: rows.map(() => 0), seed: rows.map(() => -1), reason: rows.map(() => 'balanced' as const) };
      } else {
        const bySamples = mode === 'clusters' ? null : await retrieveBySamples(x, seeds, { budget, kPerSeed: opts.kPerSeed, eligible, index: indexFor(x.rows) });
        const centroids = needsClusters ? readTable(join(work, 'centroids_0.arrow')).matrix('centroid') : null;
        const byClusters =
          mode === 'samples'
            ? null
            : await retrieveByClusters(x, seeds, { assignments: clusters!, centroids: centroids!, clustersPerSeed: params.clustersPerSeed, budget, eligible, seed: params.seed });
        picked = bySamples && byClusters ? mergeRetrieved(bySamples, byClusters, budget) : (bySamples ?? byClusters)!;
      }
      const cluster = Int32Array.from(picked.index, (r) => (clusters ? clusters[r]! : -1));
      const seedOf = picked.seed.map((s) => (s >= 0 ? seedPaths[s]! : ''));
      writeTable(join(work, 'curated.arrow'), {
        path: picked.index.map((r) => paths[r]!),
        pool_index: Int32Array.from(picked.index),
        reason: picked.reason,
        score: Float32Array.from(picked.score),
        seed_path: seedOf,
        cluster,
      });
      const csv = ['path,pool_index,reason,score,seed_path,cluster'];
      picked.index.forEach((r, i) =>
        csv.push([csvCell(paths[r]!), r, picked.reason[i], picked.score[i]!.toFixed(5), csvCell(seedOf[i]!), cluster[i]].join(',')),
      );
      writeFileSync(join(work, 'curated.csv'), csv.join('\n') + '\n');
      const reasons: Record<string, number> = {};
      for (const r of picked.reason) reasons[r] = (reasons[r] ?? 0) + 1;
      const nEligible = eligible.reduce((s, v) => s + v, 0);
      const warnings = budget !== undefined && picked.index.length < budget / 2
        ? [`only ${picked.index.length} images curated for a budget of ${budget}: ${nEligible} pool images were eligible after dedup${nEligible < budget ? ' (dedup removed the rest: see its warning; raise --dedup-threshold)' : ''}; more seeds or a larger --k-per-seed retrieve more`]
        : [];
      return { outputs: ['curated.arrow', 'curated.csv'], summary: { mode, curated: picked.index.length, eligible: nEligible, seeds: seeds.rows, reasons, warnings } };
    });
  }

  if (opts.steps.includes('report')) {
    const retrieveFp = upstream('retrieve', 'report');
    await run('report', { retrieveFp, dedupFp: dedupFp(), clusterFp: readRecord(work, 'cluster')?.fingerprint ?? null }, async () => {
      await writeReport(work, opts.thumbnails);
      return { outputs: ['stats.json', 'report/index.html'], summary: {} };
    });
  }
  return summary;
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rebuilds the cluster tree (enough for balanced sampling) from the cluster step's tables. */
function loadHierarchy(work: string, level0: Int32Array, levels: number[]): HKMeansResult {
  // Level 0 assignments over the eligible rows only would need the row map; balanced sampling takes an eligible
  // mask instead, so give every row its level-0 cluster (ineligible rows are masked out by the caller).
  const assignments = level0.map((c) => Math.max(c, 0));
  const out: HKMeansResult = { levels: [] };
  levels.forEach((_, l) => {
    const t = readTable(join(work, `centroids_${l}.arrow`));
    const centroids = t.matrix('centroid');
    out.levels.push({ centroids, assignments: l === 0 ? assignments : readTable(join(work, `centroids_${l - 1}.arrow`)).int32('parent') });
  });
  return out;
}
