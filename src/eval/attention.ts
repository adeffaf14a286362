// Self-attention maps of the last block, as DINO v1's visualize_attention.py (dino-reference.md §2.13): the CLS row of
// each head's attention over the patch tokens (register tokens excluded), and masks that keep a given share of each
// head's attention mass. Jaccard index against ground-truth masks when those are given.
import { tf } from '../backend/tf.js';
import type { VisionTransformer } from '../models/vit.js';

export interface AttentionMaps {
  heads: number;
  /** Patch grid rows and columns. */
  gridH: number;
  gridW: number;
  /** One row-major gridH×gridW map per head; each sums to the CLS token's attention on the patches (< 1). */
  maps: Float32Array[];
}

/** CLS→patch attention of every head of the last block for one image `x` [1, 3, H, W]. */
export function clsAttentionMaps(model: VisionTransformer, x: tf.Tensor): AttentionMaps {
  if (x.rank !== 4 || x.shape[0] !== 1) throw new Error(`clsAttentionMaps: expected one image [1, 3, H, W], got [${x.shape}]`);
  const [gridH, gridW] = model.patchGrid(x.shape[2]!, x.shape[3]!);
  const R = model.numRegisterTokens;
  const attn = model.getLastSelfAttention(x); // [1, heads, T, T]
  const [, heads, T] = attn.shape as [number, number, number, number];
  if (T !== 1 + R + gridH * gridW) throw new Error(`clsAttentionMaps: ${T} tokens, expected 1 + ${R} registers + ${gridH}x${gridW} patches`);
  const row = tf.tidy(() => tf.slice(attn, [0, 0, 0, 1 + R], [1, heads, 1, gridH * gridW]).reshape([heads, gridH * gridW]));
  const data = row.dataSync() as Float32Array;
  attn.dispose();
  row.dispose();
  const n = gridH * gridW;
  return { heads, gridH, gridW, maps: Array.from({ length: heads }, (_, h) => data.slice(h * n, (h + 1) * n)) };
}

/**
 * The smallest set of the largest values that holds at least `threshold` of the total mass, as visualize_attention.py:
 * sort ascending, normalise to sum 1, cumulative sum, keep where the cumulative sum exceeds 1 - threshold.
 * Equal values are ordered by position (a stable sort; torch.sort's order among exact ties is unspecified).
 */
export function massThresholdMask(values: ArrayLike<number>, threshold: number): Uint8Array {
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`massThresholdMask: threshold must be in [0, 1], got ${threshold}`);
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]! || a - b);
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i]!;
  const mask = new Uint8Array(n);
  let cum = 0;
  for (const i of order) {
    cum += values[i]! / total;
    if (cum > 1 - threshold) mask[i] = 1;
  }
  return mask;
}

/** Jaccard index |A∩B| / |A∪B| of two binary masks of equal length (1 when both are empty). */
export function jaccard(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`jaccard: mask sizes differ (${a.length} vs ${b.length})`);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! > 0;
    const y = b[i]! > 0;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** Mean of the head maps (the "average head" picture). */
export function meanMap(maps: Float32Array[]): Float32Array {
  const out = new Float32Array(maps[0]!.length);
  for (const m of maps) for (let i = 0; i < out.length; i++) out[i]! += m[i]! / maps.length;
  return out;
}
