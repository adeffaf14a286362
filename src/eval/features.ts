// Which vector represents an image, computed from a batch with the backbone (every token through the final norm):
//   cls            the CLS token (what both official forward()s return; the k-NN feature)
//   patch          the mean of the patch tokens (registers excluded)
//   cls+avgpool    [CLS, mean(patch)]: the input of DINOv2's 1-layer linear heads
//   layers:N       [CLS of the last N blocks (oldest first), mean(patch of the last block)]: DINOv2's N-layer linear
//                  input. `layers:4` holds everything the linear probe grid needs (1 or 4 blocks, with or without
//                  the average), see linear.ts.
import { tf } from '../backend/tf.js';
import type { VisionTransformer } from '../models/vit.js';

export type FeatureKind = { type: 'cls' } | { type: 'patch' } | { type: 'cls+avgpool' } | { type: 'layers'; n: number };

export function parseFeatureKind(s: string): FeatureKind {
  if (s === 'cls' || s === 'patch' || s === 'cls+avgpool') return { type: s };
  const m = /^layers:(\d+)$/.exec(s);
  if (m && Number(m[1]) >= 1) return { type: 'layers', n: Number(m[1]) };
  throw new Error(`--features '${s}': use cls, patch, cls+avgpool or layers:N (N >= 1)`);
}

export function featureKindName(k: FeatureKind): string {
  return k.type === 'layers' ? `layers:${k.n}` : k.type;
}

export function featureDim(model: VisionTransformer, kind: FeatureKind): number {
  const D = model.embedDim;
  switch (kind.type) {
    case 'cls':
    case 'patch':
      return D;
    case 'cls+avgpool':
      return 2 * D;
    case 'layers':
      return (kind.n + 1) * D;
  }
}

/** Features [B, F] of an image batch x [B, 3, H, W]. */
export function computeFeatures(model: VisionTransformer, x: tf.Tensor, kind: FeatureKind): tf.Tensor2D {
  const R = model.numRegisterTokens;
  const D = model.embedDim;
  return tf.tidy(() => {
    if (kind.type === 'cls') return model.forward(x) as tf.Tensor2D;
    if (kind.type === 'layers') {
      if (kind.n > model.config.depth) throw new Error(`--features layers:${kind.n}: the model has only ${model.config.depth} blocks`);
      const outs = model.getIntermediateLayers(x, kind.n, { tokens: 'all', norm: true }); // [B, 1+R+N, D] each
      const cls = outs.map((o) => tf.slice(o, [0, 0, 0], [-1, 1, D]).reshape([-1, D]));
      const last = outs[outs.length - 1]!;
      const avg = tf.mean(tf.slice(last, [0, 1 + R, 0], [-1, -1, D]), 1);
      return tf.concat([...cls, avg], 1) as tf.Tensor2D;
    }
    const f = model.forwardFeatures(x);
    const avg = tf.mean(f.patchTokens, 1);
    return (kind.type === 'patch' ? avg : tf.concat([f.clsToken, avg], 1)) as tf.Tensor2D;
  });
}

/** Normed patch tokens [N, D] (registers excluded) and the grid of one image x [1, 3, H, W], on the host. */
export function patchFeatures(model: VisionTransformer, x: tf.Tensor): { data: Float32Array; rows: number; cols: number; gridH: number; gridW: number } {
  const [gridH, gridW] = model.patchGrid(x.shape[2]!, x.shape[3]!);
  const f = model.forwardFeatures(x);
  const data = f.patchTokens.dataSync() as Float32Array;
  for (const t of [f.clsToken, f.regTokens, f.patchTokens, f.prenorm]) t.dispose();
  return { data, rows: gridH * gridW, cols: model.embedDim, gridH, gridW };
}
