// Approximate k-nearest neighbours by inner product with a usearch HNSW index (cosine for unit rows), for sets beyond
// what exact blocked search (topk.ts) can afford: curation dedup at scale and `dinots retrieve --approx`.
// Results have topk.ts's layout; slots the graph search did not fill stay empty (-1, -Infinity).
// Given the f32 keys, candidates are re-scored exactly and re-ranked: with f16 / i8 storage usearch's distances are
// approximate (i8 'ip' distances are not even on the cosine scale), and a dedup threshold needs true cosines.
// usearch's ESM entry fails to load under Node 20, so it is required through createRequire (node-ecosystem.md §4).
import { createRequire } from 'node:module';
import { dot, rowOf, type Matrix } from '../util/matrix.js';
import type { TopK } from './topk.js';

interface UsearchMatches {
  keys: BigUint64Array;
  distances: Float32Array;
  /** Present for a batch of queries (row stride k); one query gives its matches only. */
  counts?: BigUint64Array;
}
export interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vectors: Float32Array, k: number, threads: number): UsearchMatches;
  size(): number;
  save(path: string): void;
}
interface UsearchModule {
  Index: new (config: {
    dimensions: number;
    metric: string;
    quantization: string;
    connectivity: number;
    expansion_add: number;
    expansion_search: number;
    multi: boolean;
  }) => UsearchIndex;
}

export interface AnnIndexOptions {
  /** HNSW graph degree (usearch default 16). */
  connectivity?: number;
  /** Candidate list size while building / searching (defaults 128 / 128); higher = better recall, slower. */
  expansionAdd?: number;
  expansionSearch?: number;
  /** Storage type of the indexed vectors: f32 (exact scores), f16 or i8 (less memory). */
  quantization?: 'f32' | 'f16' | 'i8';
  /** Vectors per add/search call (bounds the temporary copies). */
  batch?: number;
  /** usearch threads (0 = all). */
  threads?: number;
  /** Called after each batch of vectors added (buildIndex) or searched (searchIndex) with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface AnnOptions extends AnnIndexOptions {
  k: number;
  /** Queries and keys are the same rows: never return a row as its own neighbour. */
  excludeSelf?: boolean;
}

const require = createRequire(import.meta.url);
let usearch: UsearchModule | null = null;
function loadUsearch(): UsearchModule {
  usearch ??= require('usearch') as UsearchModule;
  return usearch;
}

/** Builds an inner-product HNSW index over `keys` (unit rows: inner product = cosine); key i is row i. */
export function buildIndex(keys: Matrix, opts: AnnIndexOptions = {}): UsearchIndex {
  const { Index } = loadUsearch();
  const index = new Index({
    dimensions: keys.cols,
    metric: 'ip',
    quantization: opts.quantization ?? 'f32',
    connectivity: opts.connectivity ?? 16,
    expansion_add: opts.expansionAdd ?? 128,
    expansion_search: opts.expansionSearch ?? 128,
    multi: false,
  });
  const batch = opts.batch ?? 65536;
  for (let s = 0; s < keys.rows; s += batch) {
    const e = Math.min(keys.rows, s + batch);
    const ids = new BigUint64Array(e - s);
    for (let i = s; i < e; i++) ids[i - s] = BigInt(i);
    index.add(ids, keys.data.slice(s * keys.cols, e * keys.cols), opts.threads ?? 0);
    opts.onProgress?.(e, keys.rows);
  }
  return index;
}

/**
 * Approximate top-k by inner product against a built index (same layout as topkInnerProduct's result).
 * With `exactKeys` (the indexed rows, f32) the candidates' scores are exact inner products, re-ranked.
 */
export function searchIndex(index: UsearchIndex, queries: Matrix, opts: AnnOptions, exactKeys?: Matrix): TopK {
  const excludeSelf = opts.excludeSelf ?? false;
  const size = index.size();
  const k = Math.min(opts.k, Math.max(0, size - (excludeSelf ? 1 : 0)));
  const res: TopK = {
    k,
    rows: queries.rows,
    indices: new Int32Array(queries.rows * k).fill(-1),
    scores: new Float32Array(queries.rows * k).fill(-Infinity),
  };
  if (k === 0 || queries.rows === 0) return res;
  const ask = k + (excludeSelf ? 1 : 0);
  const batch = opts.batch ?? 65536;
  for (let s = 0; s < queries.rows; s += batch) {
    const e = Math.min(queries.rows, s + batch);
    const m = index.search(queries.data.slice(s * queries.cols, e * queries.cols), ask, opts.threads ?? 0);
    for (let q = s; q < e; q++) {
      const found = m.counts ? Number(m.counts[q - s]) : Math.min(ask, m.keys.length);
      let w = 0;
      for (let j = 0; j < found && w < k; j++) {
        const key = Number(m.keys[(q - s) * ask + j]);
        if (excludeSelf && key === q) continue;
        res.indices[q * k + w] = key;
        res.scores[q * k + w] = exactKeys
          ? dot(rowOf(queries, q), rowOf(exactKeys, key))
          : 1 - m.distances[(q - s) * ask + j]!; // usearch 'ip' distance is 1 - dot
        w++;
      }
      if (exactKeys) rerank(res, q, w);
    }
    opts.onProgress?.(e, queries.rows);
  }
  return res;
}

/** Sorts query q's first `filled` slots by score, descending; equal scores by lower key index (topk.ts's rule). */
function rerank(res: TopK, q: number, filled: number): void {
  const base = q * res.k;
  const order = Array.from({ length: filled }, (_, j) => j);
  const idx = res.indices.slice(base, base + filled), sc = res.scores.slice(base, base + filled);
  order.sort((a, b) => sc[b]! - sc[a]! || idx[a]! - idx[b]!);
  for (let j = 0; j < filled; j++) {
    res.indices[base + j] = idx[order[j]!]!;
    res.scores[base + j] = sc[order[j]!]!;
  }
}

/** Builds an index over `keys` (unless `prebuilt` is given) and searches it. */
export function annTopK(queries: Matrix, keys: Matrix, opts: AnnOptions, prebuilt?: UsearchIndex): TopK {
  if (queries.cols !== keys.cols) {
    throw new Error(`ann: queries have ${queries.cols} dims but keys have ${keys.cols}; embed both with the same model`);
  }
  // One progress scale over both phases: adding the keys, then searching the queries.
  const total = (prebuilt ? 0 : keys.rows) + queries.rows;
  const p = opts.onProgress;
  const index = prebuilt ?? buildIndex(keys, { ...opts, onProgress: p && ((done) => p(done, total)) });
  return searchIndex(index, queries, { ...opts, onProgress: p && ((done) => p(total - queries.rows + done, total)) }, keys);
}
