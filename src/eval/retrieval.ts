// Image retrieval on feature vectors: exact cosine search (blocked matmul, topk.ts), an approximate HNSW index (ann.ts)
// for large sets, and the usual metrics when labels say which items are relevant (same label = relevant).
import { l2NormalizeRows, type Matrix } from '../util/matrix.js';
import { buildIndex, searchIndex, type UsearchIndex } from './ann.js';
import { topkInnerProduct, type TopK, type TopKOptions } from './topk.js';

/** Exact cosine top-k: rows are L2-normalised, then ranked by inner product (ties: lower index first). */
export function exactCosineSearch(queries: Matrix, index: Matrix, k: number, opts: TopKOptions = {}): TopK {
  return topkInnerProduct(l2NormalizeRows(queries), l2NormalizeRows(index), k, opts);
}

export interface ApproxIndexOptions {
  /** HNSW graph degree (usearch "connectivity", default 16). */
  connectivity?: number;
  /** Candidate list size while adding / searching (defaults 128 / 64). */
  expansionAdd?: number;
  expansionSearch?: number;
  threads?: number;
}

/** An approximate cosine index (usearch HNSW over the L2-normalised rows, ann.ts). Keys are the row numbers of the indexed matrix. */
export class ApproxCosineIndex {
  private constructor(
    private readonly index: UsearchIndex,
    readonly dim: number,
    private readonly threads: number,
  ) {}

  static build(x: Matrix, opts: ApproxIndexOptions = {}): ApproxCosineIndex {
    const index = buildIndex(l2NormalizeRows(x), { ...opts, expansionSearch: opts.expansionSearch ?? 64 });
    return new ApproxCosineIndex(index, x.cols, opts.threads ?? 0);
  }

  /** k approximate neighbours per query; scores are cosine similarities. */
  search(queries: Matrix, k: number, opts: { excludeSelf?: boolean } = {}): TopK {
    if (queries.cols !== this.dim) throw new Error(`approximate index: query dim ${queries.cols} differs from index dim ${this.dim}`);
    return searchIndex(this.index, l2NormalizeRows(queries), { k, excludeSelf: opts.excludeSelf, threads: this.threads });
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
