// Retrieval-based curation (DINOv2 §3, LVD-142M): pull from the uncurated pool the images that look like a curated
// seed set. Sample-based: the k nearest pool images of every seed image. Cluster-based: the pool clusters whose
// centroids are nearest to seed images, then images from those clusters, split evenly under a budget.
import { Rng } from '../util/rng.js';
import { type Matrix, l2NormalizeRows, rowOf, dot, selectRows } from '../util/matrix.js';
import { nearestNeighbours, type SearchIndex } from './dedup.js';
import { balancedAllocation } from './hkmeans.js';

export interface Retrieved {
  /** Pool rows, sorted by score (best first). */
  index: number[];
  /** Similarity behind each pick: to its nearest seed image (sample-based) or its cluster's centroid to a seed. */
  score: number[];
  /** The seed image that pulled each pick in. */
  seed: number[];
  /** knn: a seed's nearest neighbour; cluster: member of a cluster near a seed; balanced: hierarchical sampling. */
  reason: ('knn' | 'cluster' | 'balanced')[];
}

export interface SampleRetrieveOptions {
  /** Pool neighbours per seed image (DINOv2 used 4); by default enough to fill the budget. */
  kPerSeed?: number;
  /** At most this many pool images (the highest scores win). */
  budget?: number;
  /** 1 for pool rows that may be picked (e.g. survivors of dedup); all when absent. */
  eligible?: Uint8Array;
  index?: SearchIndex;
}

/** Pool rows allowed by `eligible`, and the matrix of just those rows. */
function eligibleRows(pool: Matrix, eligible?: Uint8Array): { rows: number[]; sub: Matrix } {
  if (!eligible) return { rows: Array.from({ length: pool.rows }, (_, i) => i), sub: pool };
  if (eligible.length !== pool.rows) throw new Error(`eligible mask has ${eligible.length} entries for ${pool.rows} pool rows`);
  const rows: number[] = [];
  for (let i = 0; i < pool.rows; i++) if (eligible[i]) rows.push(i);
  return { rows, sub: selectRows(pool, rows) };
}

function trimToBudget(r: Retrieved, budget?: number): Retrieved {
  const order = r.index.map((_, i) => i).sort((a, b) => r.score[b]! - r.score[a]! || r.index[a]! - r.index[b]!);
  const keep = budget === undefined ? order : order.slice(0, budget);
  return {
    index: keep.map((i) => r.index[i]!),
    score: keep.map((i) => r.score[i]!),
    seed: keep.map((i) => r.seed[i]!),
    reason: keep.map((i) => r.reason[i]!),
  };
}

/** Sample-based retrieval: union of every seed image's k nearest pool images, each scored by its best seed. */
export async function retrieveBySamples(pool: Matrix, seeds: Matrix, opts: SampleRetrieveOptions = {}): Promise<Retrieved> {
  if (seeds.rows === 0) throw new Error('retrieval needs at least one seed image');
  const { rows, sub } = eligibleRows(pool, opts.eligible);
  // With a budget and no fixed k, neighbour lists overlap between seeds: widen k until the union fills the budget.
  let k = opts.kPerSeed ?? (opts.budget !== undefined ? Math.max(1, Math.ceil(opts.budget / seeds.rows)) : 4);
  let best = new Map<number, { score: number; seed: number }>();
  for (;;) {
    const nb = nearestNeighbours(seeds, sub, { k, index: opts.index });
    best = new Map();
    for (let s = 0; s < seeds.rows; s++) {
      for (let m = 0; m < nb.k; m++) {
        const j = nb.indices[s * nb.k + m]!;
        if (j < 0) continue;
        const score = nb.scores[s * nb.k + m]!;
        const prev = best.get(j);
        if (!prev || score > prev.score) best.set(j, { score, seed: s });
      }
    }
    const short = opts.budget !== undefined && best.size < opts.budget;
    if (opts.kPerSeed !== undefined || !short || k >= sub.rows) break;
    k = Math.min(sub.rows, Math.ceil(k * Math.max(1.5, (opts.budget! / Math.max(1, best.size)) * 1.1)));
  }
  const out: Retrieved = { index: [], score: [], seed: [], reason: [] };
  for (const [j, v] of best) {
    out.index.push(rows[j]!);
    out.score.push(v.score);
    out.seed.push(v.seed);
    out.reason.push('knn');
  }
  return trimToBudget(out, opts.budget);
}

export interface ClusterRetrieveOptions {
  /** Pool cluster of every pool row and the cluster centroids (from k-means on the pool). */
  assignments: Int32Array;
  centroids: Matrix;
  /** Nearest clusters taken per seed image (default 1). */
  clustersPerSeed?: number;
  /** Most images per cluster (default: all). */
  perCluster?: number;
  /** Total images; split evenly over the chosen clusters (default: no limit). */
  budget?: number;
  eligible?: Uint8Array;
  seed?: number;
}

/** Cluster-based retrieval: clusters whose centroids are nearest to seed images; members closest to the centroid first. */
export async function retrieveByClusters(pool: Matrix, seeds: Matrix, opts: ClusterRetrieveOptions): Promise<Retrieved> {
  if (seeds.rows === 0) throw new Error('retrieval needs at least one seed image');
  const { assignments, centroids } = opts;
  if (assignments.length !== pool.rows) {
    throw new Error(`cluster retrieval: ${assignments.length} cluster ids for ${pool.rows} pool rows; re-run the cluster step`);
  }
  // Cosine between seeds and (normalised) centroids.
  const unit = l2NormalizeRows(centroids);
  const nb = nearestNeighbours(seeds, unit, { k: opts.clustersPerSeed ?? 1 });
  const chosen = new Map<number, { score: number; seed: number }>();
  for (let s = 0; s < seeds.rows; s++) {
    for (let m = 0; m < nb.k; m++) {
      const c = nb.indices[s * nb.k + m]!;
      const score = nb.scores[s * nb.k + m]!;
      const prev = chosen.get(c);
      if (c >= 0 && (!prev || score > prev.score)) chosen.set(c, { score, seed: s });
    }
  }
  const clusters = [...chosen.keys()].sort((a, b) => a - b);
  // Members of each chosen cluster, closest to the centroid first.
  const members = new Map<number, { row: number; sim: number }[]>(clusters.map((c) => [c, []]));
  for (let i = 0; i < pool.rows; i++) {
    if (opts.eligible && !opts.eligible[i]) continue;
    const list = members.get(assignments[i]!);
    if (list) list.push({ row: i, sim: dot(rowOf(pool, i), rowOf(unit, assignments[i]!)) });
  }
  for (const list of members.values()) list.sort((a, b) => b.sim - a.sim || a.row - b.row);
  const caps = clusters.map((c) => Math.min(members.get(c)!.length, opts.perCluster ?? Infinity));
  const total = caps.reduce((s, v) => s + v, 0);
  const take = opts.budget !== undefined && opts.budget < total ? balancedAllocation(caps, opts.budget, new Rng(opts.seed ?? 0)) : caps;
  const out: Retrieved = { index: [], score: [], seed: [], reason: [] };
  clusters.forEach((c, ci) => {
    const { score, seed } = chosen.get(c)!;
    for (const m of members.get(c)!.slice(0, take[ci])) {
      out.index.push(m.row);
      out.score.push(score);
      out.seed.push(seed);
      out.reason.push('cluster');
    }
  });
  return trimToBudget(out);
}

/**
 * Union of two retrievals (a row found by both keeps its higher score), trimmed to a budget. The two kinds of score
 * (image-to-seed and centroid-to-seed cosines) are compared as they are: both are cosines to a seed image.
 */
export function mergeRetrieved(a: Retrieved, b: Retrieved, budget?: number): Retrieved {
  const best = new Map<number, number>();
  const all: Retrieved = { index: [...a.index, ...b.index], score: [...a.score, ...b.score], seed: [...a.seed, ...b.seed], reason: [...a.reason, ...b.reason] };
  all.index.forEach((row, i) => {
    const p = best.get(row);
    if (p === undefined || all.score[i]! > all.score[p]!) best.set(row, i);
  });
  const keep = [...best.values()];
  return trimToBudget(
    { index: keep.map((i) => all.index[i]!), score: keep.map((i) => all.score[i]!), seed: keep.map((i) => all.seed[i]!), reason: keep.map((i) => all.reason[i]!) },
    budget,
  );
}

/** A uniformly random selection of the same size, the baseline curation is compared with. */
export function randomSelection(n: number, size: number, seed = 0, eligible?: Uint8Array): number[] {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (!eligible || eligible[i]) rows.push(i);
  return new Rng(seed).shuffle(rows).slice(0, size).sort((x, y) => x - y);
}
