// Multi-head self-attention with one fused qkv projection. qkv weight rows are [q; k; v], each split into heads of
// dim D/H (the official reshape to (B, N, 3, H, D/H)); scale = (D/H)^-0.5.
import { tf, type Tensor } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { multiHeadAttention } from './functional.js';
import { Linear } from './linear.js';
import { Module } from './module.js';

export interface AttentionOptions {
  qkvBias?: boolean;
  projBias?: boolean;
  rng: Rng;
  /** trunc_normal std of both projections (DINO/timm init); omit for torch's default Linear init. */
  std?: number;
}

export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  readonly scale: number;

  constructor(readonly dim: number, readonly numHeads: number, opts: AttentionOptions) {
    super();
    if (dim % numHeads !== 0) throw new Error(`Attention: embed dim ${dim} is not divisible by ${numHeads} heads`);
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    this.qkv = this.addModule('qkv', new Linear(dim, 3 * dim, { bias: opts.qkvBias ?? true, rng: opts.rng, std: opts.std }));
    this.proj = this.addModule('proj', new Linear(dim, dim, { bias: opts.projBias ?? true, rng: opts.rng, std: opts.std }));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.proj.forward(multiHeadAttention(this.qkv.forward(x), this.numHeads, this.scale)));
  }

  /** The output and the attention probabilities [B, H, T, T] (DINO v1's Attention returns both). */
  forwardWithProbs(x: Tensor): { out: Tensor; probs: Tensor } {
    return tf.tidy(() => {
      const { out, probs } = multiHeadAttention(this.qkv.forward(x), this.numHeads, this.scale, { returnProbs: true });
      return { out: this.proj.forward(out), probs };
    });
  }
}
