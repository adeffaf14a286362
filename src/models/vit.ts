// The DINO (v1) and DINOv2 Vision Transformer in one class; `config.family` switches the few differences
// (init of cls_token, mask token, stochastic-depth form, partial patches, get_intermediate_layers semantics).
// Parameter names are the official state-dict keys. Input images are NCHW float32 [B, 3, H, W].
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { Block } from '../nn/block.js';
import { ModuleList } from '../nn/containers.js';
import { swigluHiddenDim } from '../nn/ffn.js';
import { normal, sincos2d, truncNormal } from '../nn/init.js';
import { Module } from '../nn/module.js';
import { LayerNorm } from '../nn/norm.js';
import { PatchEmbed } from '../nn/patch_embed.js';
import { interpolatePosEmbed } from '../nn/posembed.js';
import { Rng } from '../util/rng.js';
import type { ViTConfig } from './config.js';

export interface ForwardFeatures {
  /** Normed CLS token [B, D]. */
  clsToken: Tensor;
  /** Normed register tokens [B, R, D] (R may be 0). */
  regTokens: Tensor;
  /** Normed patch tokens [B, N, D]. */
  patchTokens: Tensor;
  /** Tokens after the last block, before the final norm [B, 1+R+N, D]. */
  prenorm: Tensor;
  masks?: Tensor;
}

export interface IntermediateOptions {
  /** Patch tokens as [B, D, gh, gw] instead of [B, N, D] (v2). */
  reshape?: boolean;
  /** Also return the CLS token of each layer, as [patch, cls] pairs (v2). */
  returnClassToken?: boolean;
  /** Apply the final LayerNorm (default true). */
  norm?: boolean;
  /**
   * 'patch': patch tokens only, CLS and registers removed (DINOv2's get_intermediate_layers);
   * 'all': every token [B, 1+R+N, D] (DINO v1's get_intermediate_layers). Default: by family.
   */
  tokens?: 'patch' | 'all';
}

export interface ViTOptions {
  /** Seed of the parameter init and of the stochastic-depth draws. */
  seed?: number;
  /** Init of pos_embed: the official trunc_normal(0.02) (default) or a 2-D sine-cosine grid (nn/init.ts sincos2d). */
  posEmbedInit?: 'trunc_normal' | 'sincos';
}

export class VisionTransformer extends Module {
  readonly config: ViTConfig;
  readonly clsToken: Variable;
  readonly posEmbed: Variable;
  readonly registerTokens: Variable | null;
  /** DINOv2 only: [1, D], replaces masked patch embeddings before the position embedding. */
  readonly maskToken: Variable | null;
  readonly patchEmbed: PatchEmbed;
  readonly blocks: ModuleList<Block>;
  readonly norm: LayerNorm;
  /** Stream of the stochastic-depth draws (save / restore its state to resume training exactly). */
  readonly dropPathRng: Rng;

  constructor(config: ViTConfig, { seed = 0, posEmbedInit = 'trunc_normal' }: ViTOptions = {}) {
    super();
    validateConfig(config);
    this.config = { ...config };
    const c = this.config;
    const D = c.embedDim;
    const rng = new Rng([seed, 0x5eed]);
    this.dropPathRng = new Rng([seed, 0xd509]);
    const v2 = c.family === 'dinov2';
    const grid = Math.floor(c.imgSize / c.patchSize);

    this.clsToken = this.addParam('cls_token', v2 ? normal(rng, [1, 1, D], 1e-6) : truncNormal(rng, [1, 1, D], 0.02));
    const pos = truncNormal(rng, [1, 1 + grid * grid, D], 0.02); // drawn either way: the other inits stay the same
    if (posEmbedInit === 'sincos') pos.dispose();
    this.posEmbed = this.addParam('pos_embed', posEmbedInit === 'sincos' ? sincos2d(grid, grid, D) : pos);
    this.registerTokens = c.numRegisterTokens > 0 ? this.addParam('register_tokens', normal(rng, [1, c.numRegisterTokens, D], 1e-6)) : null;
    this.maskToken = v2 ? this.addParam('mask_token', tf.zeros([1, D])) : null;
    this.patchEmbed = this.addModule('patch_embed', new PatchEmbed(c.patchSize, c.inChans, D, !v2, rng));

    const rates = dropPathRates(c);
    this.blocks = this.addModule('blocks', new ModuleList<Block>());
    for (let i = 0; i < c.depth; i++) {
      this.blocks.push(
        new Block({
          family: c.family,
          dim: D,
          numHeads: c.numHeads,
          mlpRatio: c.mlpRatio,
          qkvBias: c.qkvBias,
          projBias: c.projBias,
          ffnBias: c.ffnBias,
          ffnLayer: c.ffnLayer,
          initValues: c.initValues,
          eps: c.layerNormEps,
          dropPath: rates[i]!,
          rng,
          std: 0.02,
          dropRng: this.dropPathRng,
        }),
      );
    }
    this.norm = this.addModule('norm', new LayerNorm(D, c.layerNormEps));
  }

  get embedDim(): number {
    return this.config.embedDim;
  }

  get numRegisterTokens(): number {
    return this.config.numRegisterTokens;
  }

  /** Patch grid (rows, cols) for an H×W input; throws for v2 when H or W is not a multiple of the patch size. */
  patchGrid(h: number, w: number): [number, number] {
    return this.patchEmbed.grid(h, w);
  }

  /**
   * Tokens entering the first block, [B, 1+R+N, D]: patch embeddings (masked ones replaced by mask_token), CLS
   * prepended, interpolated pos-embed added, then the registers inserted after CLS without a position embedding.
   */
  prepareTokens(x: Tensor, masks?: Tensor | null): Tensor {
    if (x.rank !== 4) throw new Error(`VisionTransformer: expected an NCHW image batch [B, 3, H, W], got shape [${x.shape}]`);
    const [B, , H, W] = x.shape as [number, number, number, number];
    const [gh, gw] = this.patchGrid(H, W);
    const D = this.config.embedDim;
    return tf.tidy(() => {
      let t = this.patchEmbed.forward(x);
      if (masks) {
        if (!this.maskToken) throw new Error('masks are only supported by DINOv2 models (DINO v1 has no mask_token)');
        if (masks.shape[0] !== B || masks.shape[1] !== gh * gw) {
          throw new Error(`masks must be [B, N] = [${B}, ${gh * gw}] for a ${H}x${W} input, got [${masks.shape}]`);
        }
        const m = tf.cast(tf.notEqual(masks, 0), 'float32').expandDims(-1);
        t = tf.add(tf.mul(t, tf.sub(1, m)), tf.mul(this.maskToken.expandDims(0), m));
      }
      t = tf.concat([tf.broadcastTo(this.clsToken, [B, 1, D]), t], 1);
      const pos = interpolatePosEmbed(this.posEmbed, gh, gw, H, W, this.config.posEmbedInterpolation, this.config.interpolateOffset);
      t = tf.add(t, pos);
      if (this.registerTokens) {
        const R = this.config.numRegisterTokens;
        const rest = t.shape[1]! - 1;
        t = tf.concat(
          [tf.slice(t, [0, 0, 0], [B, 1, D]), tf.broadcastTo(this.registerTokens, [B, R, D]), tf.slice(t, [0, 1, 0], [B, rest, D])],
          1,
        );
      }
      return t;
    });
  }

  /** Splits normed tokens [B, 1+R+N, D] into CLS, registers and patches. */
  private split(normed: Tensor): { clsToken: Tensor; regTokens: Tensor; patchTokens: Tensor } {
    const [B, T, D] = normed.shape as [number, number, number];
    const R = this.config.numRegisterTokens;
    return {
      clsToken: tf.slice(normed, [0, 0, 0], [B, 1, D]).reshape([B, D]),
      regTokens: tf.slice(normed, [0, 1, 0], [B, R, D]),
      patchTokens: tf.slice(normed, [0, 1 + R, 0], [B, T - 1 - R, D]),
    };
  }

  /** DINOv2's forward_features: normed CLS / registers / patches and the pre-norm tokens. */
  forwardFeatures(x: Tensor, masks?: Tensor | null): ForwardFeatures {
    return tf.tidy(() => {
      let t = this.prepareTokens(x, masks);
      for (const blk of this.blocks) t = blk.forward(t);
      const out: ForwardFeatures = { ...this.split(this.norm.forward(t)), prenorm: t };
      if (masks) out.masks = masks.clone();
      return out as unknown as tf.TensorContainer;
    }) as unknown as ForwardFeatures;
  }

  /**
   * Normed CLS [B, D] and patch tokens [B, N, D] of one pass, for the training losses (DINO on CLS, iBOT on the
   * patches); like forwardFeatures without keeping the registers and pre-norm tokens.
   */
  forwardTokens(x: Tensor, masks?: Tensor | null): { cls: Tensor; patch: Tensor } {
    return tf.tidy(() => {
      let t = this.prepareTokens(x, masks);
      for (const blk of this.blocks) t = blk.forward(t);
      const { clsToken, patchTokens } = this.split(this.norm.forward(t));
      return { cls: clsToken, patch: patchTokens };
    });
  }

  /** Normed CLS token [B, D] (the output of both official forward()s). */
  forward(x: Tensor): Tensor {
    return tf.tidy(() => {
      let t = this.prepareTokens(x);
      for (const blk of this.blocks) t = blk.forward(t);
      const [B, , D] = t.shape as [number, number, number];
      return this.norm.forward(tf.slice(t, [0, 0, 0], [B, 1, D])).reshape([B, D]);
    });
  }

  /**
   * Outputs of the last `n` blocks (n a number) or of the blocks listed in `n`, in block order.
   * DINOv2 semantics by default for family 'dinov2' (patch tokens, optional reshape / class token / no norm);
   * DINO v1 semantics for family 'dino' (normed, all tokens [B, 1+N, D]). `tokens` overrides the choice.
   */
  getIntermediateLayers(x: Tensor, n: number | number[], opts: IntermediateOptions & { returnClassToken: true }): [Tensor, Tensor][];
  getIntermediateLayers(x: Tensor, n?: number | number[], opts?: IntermediateOptions): Tensor[];
  getIntermediateLayers(x: Tensor, n: number | number[] = 1, opts: IntermediateOptions = {}): Tensor[] | [Tensor, Tensor][] {
    const { reshape = false, returnClassToken = false, norm = true } = opts;
    const tokens = opts.tokens ?? (this.config.family === 'dino' ? 'all' : 'patch');
    const depth = this.config.depth;
    if (typeof n === 'number' && (!Number.isInteger(n) || n < 1 || n > depth)) {
      throw new Error(`getIntermediateLayers: n = ${n} last blocks requested, the model has ${depth}`);
    }
    const take = typeof n === 'number' ? range(depth - n, depth) : [...n];
    for (const i of take) {
      if (!Number.isInteger(i) || i < 0 || i >= depth) throw new Error(`getIntermediateLayers: block index ${i} is outside 0..${depth - 1}`);
    }
    const [B, , H, W] = x.shape as [number, number, number, number];
    const [gh, gw] = this.patchGrid(H, W);
    const R = this.config.numRegisterTokens;
    return tf.tidy(() => {
      const outs: Tensor[] = [];
      let t = this.prepareTokens(x);
      const last = Math.max(...take);
      for (let i = 0; i <= last; i++) {
        t = this.blocks.items[i]!.forward(t);
        if (take.includes(i)) outs.push(norm ? this.norm.forward(t) : t);
      }
      const D = this.config.embedDim;
      return outs.map((o) => {
        const T = o.shape[1]!;
        let main = tokens === 'all' ? o : tf.slice(o, [0, 1 + R, 0], [B, T - 1 - R, D]);
        if (reshape) {
          if (tokens === 'all') throw new Error("getIntermediateLayers: reshape needs tokens: 'patch'");
          main = main.reshape([B, gh, gw, D]).transpose([0, 3, 1, 2]);
        }
        if (!returnClassToken) return main;
        return [main, tf.slice(o, [0, 0, 0], [B, 1, D]).reshape([B, D])] as [Tensor, Tensor];
      }) as Tensor[] | [Tensor, Tensor][];
    });
  }

  /** Attention probabilities of the last block, [B, heads, T, T] (T = 1+R+N), as DINO v1's get_last_selfattention. */
  getLastSelfAttention(x: Tensor): Tensor {
    return tf.tidy(() => {
      let t = this.prepareTokens(x);
      const blocks = this.blocks.items;
      for (let i = 0; i < blocks.length - 1; i++) t = blocks[i]!.forward(t);
      return blocks[blocks.length - 1]!.attentionProbs(t);
    });
  }

  /** Parameter count of a config without building it (includes pos_embed at imgSize and mask_token for v2). */
  static countParameters(c: ViTConfig): number {
    const D = c.embedDim;
    const grid = Math.floor(c.imgSize / c.patchSize);
    let n = D + (1 + grid * grid) * D + c.numRegisterTokens * D + (c.family === 'dinov2' ? D : 0);
    n += D * c.inChans * c.patchSize * c.patchSize + D;
    const hidden = Math.floor(D * c.mlpRatio);
    let block = 4 * D; // norm1, norm2
    block += 3 * D * D + (c.qkvBias ? 3 * D : 0) + D * D + (c.projBias ? D : 0);
    if (c.ffnLayer === 'mlp') block += 2 * D * hidden + (c.ffnBias ? hidden + D : 0);
    else {
      const h = swigluHiddenDim(hidden);
      block += 2 * h * D + h * D + (c.ffnBias ? 2 * h + D : 0);
    }
    if (c.initValues) block += 2 * D;
    return n + c.depth * block + 2 * D;
  }
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** Stochastic-depth rate of each block: uniform (v2 train configs) or linear from 0 (np/torch linspace). */
export function dropPathRates(c: ViTConfig): number[] {
  if (c.dropPathUniform) return Array.from({ length: c.depth }, () => c.dropPathRate);
  if (c.depth === 1) return [0];
  return Array.from({ length: c.depth }, (_, i) => (c.dropPathRate * i) / (c.depth - 1));
}

function validateConfig(c: ViTConfig): void {
  const bad = (what: string) => {
    throw new Error(`invalid ViT config: ${what}`);
  };
  if (c.family !== 'dino' && c.family !== 'dinov2') bad(`family '${c.family}' (use 'dino' or 'dinov2')`);
  for (const k of ['imgSize', 'patchSize', 'inChans', 'embedDim', 'depth', 'numHeads'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} = ${c[k]} must be a positive integer`);
  }
  if (c.embedDim % c.numHeads !== 0) bad(`embedDim ${c.embedDim} is not divisible by numHeads ${c.numHeads}`);
  if (c.imgSize < c.patchSize) bad(`imgSize ${c.imgSize} is smaller than patchSize ${c.patchSize}`);
  if (c.family === 'dino' && c.numRegisterTokens > 0) bad('DINO v1 models have no register tokens');
  if (!['scale_factor', 'size', 'size_antialias'].includes(c.posEmbedInterpolation)) bad(`posEmbedInterpolation '${c.posEmbedInterpolation}'`);
}
