// Patch embedding: Conv2d(C, D, kernel p, stride p) on NCHW input, computed as a patch reshape + one matmul.
// The weight stays in torch's Conv2d layout [D, C, p, p].
// Sizes that are not multiples of p: DINOv2 asserts (we throw); DINO v1's conv silently drops the last H % p rows
// and W % p columns (we crop the same way) — `floorPartial` selects the v1 behaviour.
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { torchDefaultBound, uniform } from './init.js';
import { Module } from './module.js';

export class PatchEmbed extends Module {
  readonly proj: PatchProjection;

  constructor(readonly patchSize: number, readonly inChans: number, readonly embedDim: number, readonly floorPartial: boolean, rng: Rng) {
    super();
    this.proj = this.addModule('proj', new PatchProjection(patchSize, inChans, embedDim, rng));
  }

  /** Patch grid (rows, cols) for an H×W image. */
  grid(H: number, W: number): [number, number] {
    const p = this.patchSize;
    if (!this.floorPartial && (H % p !== 0 || W % p !== 0)) {
      throw new Error(
        `input size ${H}x${W} is not a multiple of the patch size ${p} (DINOv2 requires it): ` +
          `resize or crop the image to ${Math.floor(H / p) * p}x${Math.floor(W / p) * p} or ${Math.ceil(H / p) * p}x${Math.ceil(W / p) * p}`,
      );
    }
    return [Math.floor(H / p), Math.floor(W / p)];
  }

  /** [B, C, H, W] → [B, gh·gw, D], patches in row-major order. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChans) {
      throw new Error(`PatchEmbed: expected NCHW input [B, ${this.inChans}, H, W], got [${x.shape}]`);
    }
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const [gh, gw] = this.grid(H, W);
    const p = this.patchSize;
    return tf.tidy(() => {
      const cropped = H === gh * p && W === gw * p ? x : tf.slice(x, [0, 0, 0, 0], [B, C, gh * p, gw * p]);
      // [B, C, gh, p, gw, p] → [B, gh, gw, C, p, p]: one row per patch in the (C, kh, kw) order of the conv weight.
      const patches = cropped.reshape([B, C, gh, p, gw, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([B * gh * gw, C * p * p]);
      const w = this.proj.weight.reshape([this.embedDim, C * p * p]);
      return tf.add(tf.matMul(patches, w, false, true), this.proj.bias).reshape([B, gh * gw, this.embedDim]);
    });
  }
}

/** Holds the conv parameters under torch's names (`proj.weight` [D, C, p, p], `proj.bias` [D]); default Conv2d init. */
export class PatchProjection extends Module {
  readonly weight: Variable;
  readonly bias: Variable;

  constructor(p: number, inChans: number, embedDim: number, rng: Rng) {
    super();
    const bound = torchDefaultBound(inChans * p * p);
    this.weight = this.addParam('weight', uniform(rng, [embedDim, inChans, p, p], bound));
    this.bias = this.addParam('bias', uniform(rng, [embedDim], bound));
  }
}
