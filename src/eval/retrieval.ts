// Image retrieval on feature vectors: exact cosine search (blocked matmul, topk.ts), an approximate HNSW index (usearch)
// for large sets, and the usual metrics when labels say which items are relevant (same label = relevant).
import { createRequire } from 'node:module';
import { l2NormalizeRows, type Matrix } from '../util/matrix.js';
import { topkInnerProduct, type TopK, type TopKOptions } from './topk.js';

// usearch's ESM entry fails to load under Node 20; its CommonJS build works.
const require = createRequire(import.meta.url);

/** Exact cosine top-k: rows are L2-normalised, then ranked by inner product (ties: lower index first). */
export function exactCosineSearch(queries: Matrix, index: Matrix, k: number, opts: TopKOptions = {}): TopK {
  return topkInnerProduct(l2NormalizeRows(queries), l2NormalizeRows(index), k, opts);
}

/** Drops each query's own row from an approximate search asked for one extra neighbour. */
function dropSelf(r: TopK, k: number): TopK {
  const indices = new Int32Array(r.rows * k);
  const scores = new Float32Array(r.rows * k);
  for (let q = 0; q < r.rows; q++) {
    let j = 0;
    for (let t = 0; t < r.k && j < k; t++) {
      const idx = r.indices[q * r.k + t]!;
      if (idx === q) continue;
      indices[q * k + j] = idx;
      scores[q * k + j] = r.scores[q * r.k + t]!;
      j++;
    }
  }
  return { k, rows: r.rows, indices, scores };
}

interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  /** One query gives {keys, distances}; several give {keys, distances, counts, k} (row stride k). */
  search(vectors: Float32Array, k: number, threads: number): { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array; k?: number };
  size(): number;
  save(path: string): void;
  load(path: string): void;
}

export interface ApproxIndexOptions {
  /** HNSW graph degree (usearch "connectivity", default 16). */
  connectivity?: number;
  /** Candidate list size while adding / searching (defaults 128 / 64). */
  expansionAdd?: number;
  expansionSearch?: number;
  threads?: number;
}

/** An approximate cosine index (usearch HNSW). Keys are the row numbers of the indexed matrix. */
export class ApproxCosineIndex {
  private constructor(
    private readonly index: UsearchIndex,
    readonly dim: number,
    private readonly threads: number,
  ) {}

  static build(x: Matrix, opts: ApproxIndexOptions = {}): ApproxCosineIndex {
    const usearch = require('usearch') as { Index: new (cfg: Record<string, unknown>) => UsearchIndex };
    const index = new usearch.Index({
      dimensions: x.cols,
      metric: 'cos',
      quantization: 'f32',
      connectivity: opts.connectivity ?? 16,
      expansion_add: opts.expansionAdd ?? 128,
      expansion_search: opts.expansionSearch ?? 64,
      multi: false,
    });
    const keys = new BigUint64Array(x.rows);
    for (let i = 0; i < x.rows; i++) keys[i] = BigInt(i);
    index.add(keys, l2NormalizeRows(x).data, opts.threads ?? 0);
    return new ApproxCosineIndex(index, x.cols, opts.threads ?? 0);
  }

  /** k approximate neighbours per query; scores are cosine similarities (1 - usearch's cosine distance). */
  search(queries: Matrix, k: number, opts: { excludeSelf?: boolean } = {}): TopK {
    if (queries.cols !== this.dim) throw new Error(`approximate index: query dim ${queries.cols} differs from index dim ${this.dim}`);
    const size = this.index.size();
    const want = Math.min(size, opts.excludeSelf ? k + 1 : k);
    const res = this.index.search(l2NormalizeRows(queries).data, want, this.threads);
    const raw: TopK = { k: want, rows: queries.rows, indices: new Int32Array(queries.rows * want).fill(-1), scores: new Float32Array(queries.rows * want).fill(-Infinity) };
    const stride = res.k ?? want;
    for (let q = 0; q < queries.rows; q++) {
      const count = res.counts ? Number(res.counts[q]) : res.keys.length;
      for (let j = 0; j < count; j++) {
        raw.indices[q * want + j] = Number(res.keys[q * stride + j]);
        raw.scores[q * want + j] = 1 - res.distances[q * stride + j]!;
      }
    }
    return opts.excludeSelf ? dropSelf(raw, Math.min(k, size - 1)) : raw;
  }

  save(path: string): void {
    this.index.save(path);
  }
}

export interface RetrievalMetrics {
  /** Mean average precision over queries that have at least one relevant item, in percent. */
  mAP: number;
  /** Percent of those queries with at least one relevant item among the first k results. */
  recallAt: Record<number, number>;
  /** Mean share of relevant items among the first k results, in percent. */
  precisionAt: Record<number, number>;
  queriesWithRelevant: number;
  /** Length of the ranked lists used; when shorter than the index, AP counts missing relevant items as not found. */
  depth: number;
}

/**
 * Metrics from ranked lists. Relevant = same label (the query itself excluded when `excludeSelf`). AP is
 * (1/R) Σ_{relevant ranks r} precision@r, with R the number of relevant items in the whole index.
 */
export function retrievalMetrics(
  ranked: TopK,
  queryLabels: ArrayLike<number>,
  indexLabels: ArrayLike<number>,
  opts: { ks?: number[]; excludeSelf?: boolean } = {},
): RetrievalMetrics {
  const ks = opts.ks ?? [1, 5, 10];
  const kSet = new Set(ks);
  const count = new Map<number, number>();
  for (let i = 0; i < indexLabels.length; i++) count.set(Number(indexLabels[i]), (count.get(Number(indexLabels[i])) ?? 0) + 1);
  let apSum = 0;
  let used = 0;
  const recall = Object.fromEntries(ks.map((k) => [k, 0])) as Record<number, number>;
  const precision = Object.fromEntries(ks.map((k) => [k, 0])) as Record<number, number>;
  for (let q = 0; q < ranked.rows; q++) {
    const label = Number(queryLabels[q]);
    const R = (count.get(label) ?? 0) - (opts.excludeSelf ? 1 : 0);
    if (R <= 0) continue;
    used++;
    let hits = 0;
    let ap = 0;
    let firstHit = Infinity;
    const hitsAt = new Map<number, number>(); // hits within the first k, for k in ks
    for (let r = 0; r < ranked.k; r++) {
      const idx = ranked.indices[q * ranked.k + r]!;
      if (idx >= 0 && Number(indexLabels[idx]) === label) {
        hits++;
        ap += hits / (r + 1);
        firstHit = Math.min(firstHit, r);
      }
      if (kSet.has(r + 1)) hitsAt.set(r + 1, hits);
    }
    apSum += ap / R;
    for (const k of ks) {
      if (firstHit < k) recall[k]!++;
      precision[k]! += (hitsAt.get(k) ?? hits) / k; // k beyond the list: all hits found
    }
  }
  const pct = (v: number) => (used ? (100 * v) / used : NaN);
  return {
    mAP: pct(apSum),
    recallAt: Object.fromEntries(ks.map((k) => [k, pct(recall[k]!)])),
    precisionAt: Object.fromEntries(ks.map((k) => [k, pct(precision[k]!)])),
    queriesWithRelevant: used,
    depth: ranked.k,
  };
}
