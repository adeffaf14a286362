// Hierarchical k-means and balanced sampling (Vo et al. 2024, "Automatic Data Curation for Self-Supervised Learning",
// the method behind DINOv2-style curation): level 1 clusters the data, level l clusters the centroids of level l-1.
// Optional resampling steps re-fit each level on the r points closest to every centroid, which moves centroids away
// from dense modes. Balanced sampling then splits a budget as evenly as possible over the top clusters, and
// recursively over their children, so rare concepts get as many images as common ones.
import { Rng } from '../util/rng.js';
import { type Matrix, selectRows } from '../util/matrix.js';
import { assignToCentroids, kmeans } from './kmeans.js';

export interface HKMeansOptions {
  /** Clusters per level, finest first (e.g. [1000, 100, 10]). */
  levels: number[];
  iters?: number;
  seed?: number;
  /** Points closest to each centroid used in a resampling step, per level (0 or 1 = no resampling). */
  resampleSizes?: number[];
  /** Resampling steps per level (default 10 when resampleSizes is given). */
  resampleSteps?: number;
  block?: number;
  onLevel?: (level: number, inertia: number) => void;
}

export interface HKMeansLevel {
  centroids: Matrix;
  /** Level 0: data row -> cluster. Level l > 0: cluster of level l-1 -> cluster of level l. */
  assignments: Int32Array;
}

export interface HKMeansResult {
  levels: HKMeansLevel[];
}

/** The `r` members of each cluster closest to its centroid. */
function closestPerCluster(assignments: Int32Array, distances: Float32Array, k: number, r: number): number[] {
  const members: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < assignments.length; i++) members[assignments[i]!]!.push(i);
  const out: number[] = [];
  for (const m of members) {
    m.sort((a, b) => distances[a]! - distances[b]! || a - b);
    out.push(...m.slice(0, r));
  }
  return out;
}

export async function hierarchicalKMeans(x: Matrix, opts: HKMeansOptions): Promise<HKMeansResult> {
  if (opts.levels.length === 0) throw new Error('hierarchical k-means needs at least one level (e.g. --levels 100,10)');
  const levels: HKMeansLevel[] = [];
  let data = x;
  for (let l = 0; l < opts.levels.length; l++) {
    const k = opts.levels[l]!;
    if (k > data.rows) {
      throw new Error(`hierarchical k-means level ${l + 1}: ${k} clusters but only ${data.rows} points; use fewer clusters`);
    }
    const seed = (opts.seed ?? 0) * 1000 + l;
    let res = await kmeans(data, { k, iters: opts.iters, seed, block: opts.block });
    let { centroids, assignments } = res;
    let distances = res.distances;
    const r = opts.resampleSizes?.[l] ?? 0;
    if (r > 1) {
      for (let step = 0; step < (opts.resampleSteps ?? 10); step++) {
        const sample = selectRows(data, closestPerCluster(assignments, distances, k, r));
        res = await kmeans(sample, { k: Math.min(k, sample.rows), iters: opts.iters, seed: seed + 7919 * (step + 1), block: opts.block });
        centroids = res.centroids;
        ({ assignments, distances } = await assignToCentroids(data, centroids, opts.block));
      }
    }
    levels.push({ centroids, assignments });
    opts.onLevel?.(l, distances.reduce((s, v) => s + v, 0));
    data = centroids;
  }
  return { levels };
}

/** Top-level cluster of every data row. */
export function topLevelLabels(h: HKMeansResult): Int32Array {
  let labels = Int32Array.from(h.levels[0]!.assignments);
  for (let l = 1; l < h.levels.length; l++) {
    const up = h.levels[l]!.assignments;
    labels = labels.map((c) => up[c]!);
  }
  return labels;
}

/**
 * Splits `target` over groups of the given sizes as evenly as possible: every group gets min(size, cap) for the
 * largest cap that fits, and the few units left go to randomly chosen groups that still have room.
 */
export function balancedAllocation(sizes: ArrayLike<number>, target: number, rng: Rng): number[] {
  const n = sizes.length;
  const total = Array.from(sizes).reduce((s, v) => s + v, 0);
  if (target >= total) return Array.from(sizes);
  let lo = 0;
  let hi = Array.from(sizes).reduce((m, v) => Math.max(m, v), 0);
  const filled = (cap: number) => Array.from(sizes).reduce((s, v) => s + Math.min(v, cap), 0);
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (filled(mid) <= target) lo = mid;
    else hi = mid;
  }
  const out = Array.from(sizes, (v) => Math.min(v, lo));
  let left = target - filled(lo);
  const roomy = rng.shuffle(Array.from({ length: n }, (_, i) => i).filter((i) => sizes[i]! > lo));
  for (const i of roomy) {
    if (left === 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

/** Balanced sample of `target` data rows down the cluster tree; within a leaf cluster rows are drawn at random. */
export function hierarchicalSample(h: HKMeansResult, target: number, seed = 0, eligible?: Uint8Array): number[] {
  const rng = new Rng(seed);
  const L = h.levels.length;
  // children[l][c]: members of cluster c at level l (data rows for l = 0, clusters of level l-1 otherwise).
  const children: number[][][] = h.levels.map((lev) => {
    const m: number[][] = Array.from({ length: lev.centroids.rows }, () => []);
    lev.assignments.forEach((c, i) => {
      if (lev === h.levels[0] && eligible && !eligible[i]) return;
      m[c]!.push(i);
    });
    return m;
  });
  // Number of eligible data rows under every cluster of every level.
  const weight: number[][] = [children[0]!.map((m) => m.length)];
  for (let l = 1; l < L; l++) weight.push(children[l]!.map((m) => m.reduce((s, c) => s + weight[l - 1]![c]!, 0)));

  const picked: number[] = [];
  const take = (level: number, cluster: number, budget: number): void => {
    if (budget === 0) return;
    const kids = children[level]![cluster]!;
    if (level === 0) {
      picked.push(...rng.shuffle([...kids]).slice(0, budget));
      return;
    }
    const split = balancedAllocation(kids.map((c) => weight[level - 1]![c]!), budget, rng);
    kids.forEach((c, i) => take(level - 1, c, split[i]!));
  };
  const tops = weight[L - 1]!;
  const split = balancedAllocation(tops, target, rng);
  tops.forEach((_, c) => take(L - 1, c, split[c]!));
  return picked.sort((a, b) => a - b);
}
