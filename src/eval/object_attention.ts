// "Attention that finds the object", as a number: the Jaccard index between the mask that keeps 60% of the last
// block's CLS attention mass (each head separately, as DINO's visualize_attention.py) and the object's pixels.
// Used on images whose object is the bright part of a dark background (digits): the foreground is the pixels above
// a threshold. The patch mask is upsampled to pixels by repetition (visualize_attention's nearest upsampling by the
// patch size), so a mask that covers the digit's patches but also their background corners scores below 1.
import { tf } from '../backend/tf.js';
import type { VisionTransformer } from '../models/vit.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/image.js';
import { jaccard, massThresholdMask } from './attention.js';

export interface ObjectAttentionScore {
  /** Jaccard averaged over images and heads. */
  meanHeads: number;
  /** The head with the highest average Jaccard over the images, and its average. */
  bestHead: number;
  bestHeadJaccard: number;
  /** Per-head averages. */
  perHead: number[];
  images: number;
  /** Share of attention mass kept (0.6 by default). */
  mass: number;
}

/**
 * Foreground masks [n][S·S] of normalised eval crops (NCHW, ImageNet-normalised, [n, 3, S, S] flattened): a pixel is
 * foreground when its first channel, back in [0, 1], exceeds `threshold`.
 */
export function brightForeground(crops: Float32Array, n: number, S: number, threshold = 0.5): Uint8Array[] {
  const per = 3 * S * S;
  if (crops.length !== n * per) throw new Error(`brightForeground: ${crops.length} values is not ${n} crops of 3x${S}x${S}`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const m = new Uint8Array(S * S);
    for (let p = 0; p < S * S; p++) m[p] = crops[i * per + p]! * IMAGENET_STD[0]! + IMAGENET_MEAN[0]! > threshold ? 1 : 0;
    out.push(m);
  }
  return out;
}

/** A gh×gw patch mask repeated to an S×S pixel mask (pixels past the patch grid stay 0). */
function patchMaskToPixels(mask: Uint8Array, gh: number, gw: number, p: number, S: number): Uint8Array {
  const out = new Uint8Array(S * S);
  for (let y = 0; y < Math.min(S, gh * p); y++) {
    for (let x = 0; x < Math.min(S, gw * p); x++) out[y * S + x] = mask[Math.floor(y / p) * gw + Math.floor(x / p)]!;
  }
  return out;
}

/**
 * Jaccard of each head's `mass` attention mask (maps: heads × gh·gw, CLS → patches) with one image's S×S foreground.
 */
export function headJaccards(maps: Float32Array, heads: number, [gh, gw]: [number, number], patch: number, foreground: Uint8Array, S: number, mass = 0.6): number[] {
  const N = gh * gw;
  if (maps.length !== heads * N) throw new Error(`headJaccards: ${maps.length} values is not ${heads} maps of ${gh}x${gw}`);
  return Array.from({ length: heads }, (_, h) => jaccard(patchMaskToPixels(massThresholdMask(maps.subarray(h * N, (h + 1) * N), mass), gh, gw, patch, S), foreground));
}

/**
 * Scores `model` on `n` normalised S×S crops against their foreground masks. Images without foreground pixels are
 * skipped (their Jaccard would say nothing about the model). Runs in batches of `batch` without gradients.
 */
export function objectAttentionJaccard(
  model: VisionTransformer, crops: Float32Array, n: number, S: number, foreground: Uint8Array[], { mass = 0.6, batch = 64 } = {},
): ObjectAttentionScore {
  const [gh, gw] = model.patchGrid(S, S);
  const R = model.numRegisterTokens;
  const p = model.config.patchSize;
  const N = gh * gw;
  const per = 3 * S * S;
  let sums: number[] | null = null;
  let images = 0;
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const rows = tf.tidy(() => {
      const attn = model.getLastSelfAttention(tf.tensor(crops.subarray(s * per, (s + b) * per), [b, 3, S, S])); // [b, h, T, T]
      const heads = attn.shape[1]!;
      return tf.slice(attn, [0, 0, 0, 1 + R], [b, heads, 1, N]).reshape([b, heads, N]);
    });
    const heads = rows.shape[1]!;
    const data = rows.dataSync() as Float32Array;
    rows.dispose();
    sums ??= new Array<number>(heads).fill(0);
    for (let i = 0; i < b; i++) {
      const fg = foreground[s + i]!;
      if (!fg.some((v) => v > 0)) continue;
      images++;
      const perHead = headJaccards(data.subarray(i * heads * N, (i + 1) * heads * N), heads, [gh, gw], p, fg, S, mass);
      perHead.forEach((v, h) => (sums![h]! += v));
    }
  }
  if (!sums || images === 0) throw new Error('objectAttentionJaccard: no image with foreground pixels');
  const perHead = sums.map((v) => v / images);
  const bestHead = perHead.indexOf(Math.max(...perHead));
  return { meanHeads: perHead.reduce((a, v) => a + v, 0) / perHead.length, bestHead, bestHeadJaccard: perHead[bestHead]!, perHead, images, mass };
}
