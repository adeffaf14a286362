// Pre-norm transformer block: x += DropPath(LS1(Attn(LN1(x)))); x += DropPath(LS2(FFN(LN2(x)))).
// `family` selects the stochastic-depth form: v1 one per-sample DropPath; v2 the batch-subset residual above 0.1.
import { tf, type Tensor } from '../backend/tf.js';
import type { Rng } from '../util/rng.js';
import { Attention } from './attention.js';
import { dropAddResidualStochasticDepth, dropPath } from './drop_path.js';
import { type FeedForward, Mlp, SwiGLUFFN } from './ffn.js';
import { LayerScale } from './layer_scale.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

export interface BlockOptions {
  family: 'dino' | 'dinov2';
  dim: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  projBias: boolean;
  ffnBias: boolean;
  ffnLayer: 'mlp' | 'swiglufused';
  /** LayerScale init; null or 0 = no LayerScale. */
  initValues: number | null;
  eps: number;
  dropPath: number;
  /** Parameter init stream and trunc_normal std of the Linear weights. */
  rng: Rng;
  std: number;
  /** Stream of the stochastic-depth draws. */
  dropRng: Rng;
}

export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: FeedForward;
  readonly ls2: LayerScale | null;
  readonly family: 'dino' | 'dinov2';
  readonly dropRate: number;
  private readonly dropRng: Rng;

  constructor(o: BlockOptions) {
    super();
    this.family = o.family;
    this.dropRate = o.dropPath;
    this.dropRng = o.dropRng;
    this.norm1 = this.addModule('norm1', new LayerNorm(o.dim, o.eps));
    this.attn = this.addModule('attn', new Attention(o.dim, o.numHeads, { qkvBias: o.qkvBias, projBias: o.projBias, rng: o.rng, std: o.std }));
    this.ls1 = o.initValues ? this.addModule('ls1', new LayerScale(o.dim, o.initValues)) : null;
    this.norm2 = this.addModule('norm2', new LayerNorm(o.dim, o.eps));
    const hidden = Math.floor(o.dim * o.mlpRatio);
    const ffn = { bias: o.ffnBias, rng: o.rng, std: o.std };
    this.mlp = this.addModule('mlp', o.ffnLayer === 'mlp' ? new Mlp(o.dim, hidden, ffn) : new SwiGLUFFN(o.dim, hidden, ffn));
    this.ls2 = o.initValues ? this.addModule('ls2', new LayerScale(o.dim, o.initValues)) : null;
  }

  attnResidual(x: Tensor): Tensor {
    return tf.tidy(() => {
      const y = this.attn.forward(this.norm1.forward(x));
      return this.ls1 ? this.ls1.forward(y) : y;
    });
  }

  ffnResidual(x: Tensor): Tensor {
    return tf.tidy(() => {
      const y = this.mlp.forward(this.norm2.forward(x));
      return this.ls2 ? this.ls2.forward(y) : y;
    });
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      const p = this.training ? this.dropRate : 0;
      if (this.family === 'dinov2' && p > 0.1) {
        // The overhead of the subset gather pays off only above 0.1 (official comment).
        x = dropAddResidualStochasticDepth(x, (s) => this.attnResidual(s), p, this.dropRng);
        return dropAddResidualStochasticDepth(x, (s) => this.ffnResidual(s), p, this.dropRng);
      }
      x = tf.add(x, dropPath(this.attnResidual(x), p, this.dropRng));
      return tf.add(x, dropPath(this.ffnResidual(x), p, this.dropRng));
    });
  }

  /** Attention probabilities [B, H, T, T] of this block's attention for input x (v1 get_last_selfattention). */
  attentionProbs(x: Tensor): Tensor {
    return tf.tidy(() => this.attn.forwardWithProbs(this.norm1.forward(x)).probs);
  }
}
