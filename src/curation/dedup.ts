// Near-duplicate removal (DINOv2 §3 / LVD-142M): a k-NN graph over the embeddings, an edge wherever cosine similarity
// reaches a threshold, connected components (union-find), one image kept per component. Also "relative" dedup:
// pool images too close to any evaluation image are dropped, so curated training data cannot leak the test sets.
import { type Matrix, rowOf, dot } from '../util/matrix.js';
import { topkInnerProduct, type TopK } from '../eval/topk.js';
import { annTopK, type AnnOptions } from '../eval/ann.js';
import { UnionFind } from './unionfind.js';

/**
 * Cosine threshold for "same image" on L2-normalised CLS embeddings of a trained model. Not tuned here (no trained
 * weights on this machine); DINOv2 itself used a copy-detection embedding (SSCD) with its own threshold.
 */
export const DEFAULT_DEDUP_THRESHOLD = 0.95;
/** Looser threshold against evaluation sets: leaking a test image costs more than losing a training one. */
export const DEFAULT_EVAL_THRESHOLD = 0.9;
/**
 * For the 16x16 thumbnail embedding (--model pixels), tuned on the planted-duplicate pool (MNIST digits + photo
 * crops, bench/curation.ts --quality): 0.97 gives precision 0.94 / recall 0.74 (every resize, JPEG and colour copy;
 * no 8-15% crops, which move pixels), 0.95 drops precision to 0.56 (distinct digits of the same class match).
 */
export const PIXEL_DEDUP_THRESHOLD = 0.97;
export const PIXEL_EVAL_THRESHOLD = 0.95;

export type SearchIndex = 'exact' | 'ann';

export interface DedupOptions {
  threshold?: number;
  /** Neighbours per image in the graph (larger groups still join through chains). */
  k?: number;
  index?: SearchIndex;
  /** Which member of a group survives: the one nearest the group's mean direction, or the lowest index. */
  keep?: 'central' | 'first';
  queryBlock?: number;
  keyBlock?: number;
  /** HNSW settings when index is 'ann'. */
  ann?: Omit<AnnOptions, 'k' | 'excludeSelf'>;
  /** Progress of the k-NN graph: (done, total) after each key block (exact) or batch added / searched (ann). */
  onProgress?: (done: number, total: number) => void;
}

export interface DedupResult {
  threshold: number;
  /** Edges at or above the threshold (each unordered pair once). */
  edges: number;
  /** Component id of every row (singletons included). */
  component: Int32Array;
  /** Components with more than one member, members in ascending order. */
  groups: number[][];
  /** The kept member of each entry of `groups`. */
  keepers: number[];
  /** 1 where the row survives dedup. */
  keep: Uint8Array;
  /** Highest similarity of each row to any other row (its nearest neighbour), for reports. */
  nearestScore: Float32Array;
}

export function nearestNeighbours(
  queries: Matrix,
  keys: Matrix,
  opts: {
    k: number;
    excludeSelf?: boolean;
    index?: SearchIndex;
    queryBlock?: number;
    keyBlock?: number;
    ann?: Omit<AnnOptions, 'k' | 'excludeSelf'>;
    onProgress?: (done: number, total: number) => void;
  },
): TopK {
  if (opts.index === 'ann') return annTopK(queries, keys, { ...opts.ann, k: opts.k, excludeSelf: opts.excludeSelf, onProgress: opts.onProgress });
  return topkInnerProduct(queries, keys, opts.k, opts);
}

/** Groups from a k-NN graph: union every (i, neighbour) pair whose score reaches the threshold. */
export function groupsFromNeighbours(nb: TopK, n: number, threshold: number): {
  component: Int32Array;
  groups: number[][];
  edges: number;
} {
  const uf = new UnionFind(n);
  const seen = new Set<number>(); // pair i*n+j with i<j
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < nb.k; m++) {
      const j = nb.indices[i * nb.k + m]!;
      if (j < 0 || nb.scores[i * nb.k + m]! < threshold) break; // sorted: the rest are lower
      if (j !== i) {
        uf.union(i, j);
        seen.add(i < j ? i * n + j : j * n + i);
      }
    }
  }
  const { label, count } = uf.components();
  // Member lists only for components with more than one row (most rows are singletons).
  const size = new Int32Array(count);
  for (let i = 0; i < n; i++) size[label[i]!]!++;
  const slot = new Int32Array(count).fill(-1);
  const groups: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = label[i]!;
    if (size[c]! < 2) continue;
    if (slot[c] === -1) slot[c] = groups.push([]) - 1;
    groups[slot[c]!]!.push(i);
  }
  return { component: label, groups, edges: seen.size };
}

/** The member whose embedding is closest to the group's mean direction. */
export function mostCentral(emb: Matrix, group: number[]): number {
  const mean = new Float32Array(emb.cols);
  for (const i of group) {
    const r = rowOf(emb, i);
    for (let j = 0; j < mean.length; j++) mean[j]! += r[j]!;
  }
  let best = group[0]!;
  let bestScore = -Infinity;
  for (const i of group) {
    const s = dot(rowOf(emb, i), mean);
    if (s > bestScore) [best, bestScore] = [i, s];
  }
  return best;
}

/** Finds near-duplicate groups in `emb` (unit rows) and marks one survivor per group. */
export function deduplicate(emb: Matrix, opts: DedupOptions = {}): DedupResult {
  const threshold = opts.threshold ?? DEFAULT_DEDUP_THRESHOLD;
  if (!(threshold > -1 && threshold <= 1)) throw new Error(`dedup threshold must be in (-1, 1], got ${threshold}`);
  const nb = nearestNeighbours(emb, emb, { ...opts, k: opts.k ?? 16, excludeSelf: true });
  const { component, groups, edges } = groupsFromNeighbours(nb, emb.rows, threshold);
  const keep = new Uint8Array(emb.rows).fill(1);
  const keepers: number[] = [];
  for (const g of groups) {
    const keeper = opts.keep === 'first' ? g[0]! : mostCentral(emb, g);
    keepers.push(keeper);
    for (const i of g) if (i !== keeper) keep[i] = 0;
  }
  const nearestScore = new Float32Array(emb.rows);
  for (let i = 0; i < emb.rows; i++) nearestScore[i] = nb.k > 0 ? nb.scores[i * nb.k]! : -Infinity;
  return { threshold, edges, component, groups, keepers, keep, nearestScore };
}

export interface EvalOverlap {
  threshold: number;
  /** Per pool row: index of the closest evaluation image, and its similarity. */
  match: Int32Array;
  score: Float32Array;
  /** Pool rows at or above the threshold (to drop). */
  removed: number[];
}

/** Pool images that nearly duplicate an evaluation image (test-set leakage). */
export function findEvalOverlap(
  pool: Matrix,
  evalSet: Matrix,
  opts: { threshold?: number; index?: SearchIndex; queryBlock?: number; keyBlock?: number } = {},
): EvalOverlap {
  const threshold = opts.threshold ?? DEFAULT_EVAL_THRESHOLD;
  const nb = nearestNeighbours(pool, evalSet, { ...opts, k: 1 });
  const removed: number[] = [];
  for (let i = 0; i < pool.rows; i++) if (nb.k > 0 && nb.scores[i]! >= threshold) removed.push(i);
  return { threshold, match: nb.indices, score: nb.scores, removed };
}
