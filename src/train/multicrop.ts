// The official MultiCropWrapper forward: consecutive crops of the same resolution are concatenated along the batch
// and go through the backbone together; the CLS outputs are concatenated (crop-major: [g1 images; g2 images; l1 ...])
// and go through the head in one call.
import { tf, type Tensor } from '../backend/tf.js';

export interface Backbone {
  /** [B, C, H, W] → CLS features [B, D]. */
  forward(x: Tensor): Tensor;
}
export interface Head {
  forward(x: Tensor): Tensor;
}

/** Splits crop indices into runs of equal spatial size (torch.unique_consecutive on the last dim). */
export function sameResolutionRuns(crops: Tensor[]): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  for (let i = 1; i <= crops.length; i++) {
    if (i === crops.length || crops[i]!.shape[3] !== crops[start]!.shape[3]) {
      runs.push([start, i]);
      start = i;
    }
  }
  return runs;
}

export function multiCropForward(backbone: Backbone, head: Head, crops: Tensor[]): Tensor {
  if (crops.length === 0) throw new Error('multiCropForward: no crops');
  return tf.tidy(() => {
    const feats = sameResolutionRuns(crops).map(([a, b]) =>
      backbone.forward(b - a === 1 ? crops[a]! : tf.concat(crops.slice(a, b), 0)),
    );
    return head.forward(feats.length === 1 ? feats[0]! : tf.concat(feats, 0));
  });
}
