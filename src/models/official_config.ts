// ViTConfig from the keyword arguments of the official constructors (DinoVisionTransformer / dino VisionTransformer),
// as stored in fixture configs and training args: img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio,
// qkv_bias, proj_bias, ffn_bias, init_values, ffn_layer, num_register_tokens, interpolate_antialias,
// interpolate_offset, drop_path_rate, drop_path_uniform.
import { dinoConfig, dinov2Config, type PosEmbedInterpolation, type ViTConfig } from './config.js';

type Kwargs = Record<string, unknown>;

function num(kw: Kwargs, key: string, fallback?: number): number {
  const v = kw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`official config: '${key}' must be a number, got ${JSON.stringify(kw[key])}`);
  return v;
}

/** The official interpolation switch: a truthy offset → scale_factor; offset 0 → size (antialias or not). */
export function posEmbedInterpolationOf(antialias: boolean, offset: number): PosEmbedInterpolation {
  if (offset) {
    if (antialias) throw new Error('official config: interpolate_antialias with a non-zero interpolate_offset (scale_factor + antialias) is not supported');
    return 'scale_factor';
  }
  return antialias ? 'size_antialias' : 'size';
}

export function configFromOfficial(kw: Kwargs, family: 'dino' | 'dinov2'): ViTConfig {
  const common: Partial<ViTConfig> = {
    imgSize: num(kw, 'img_size', family === 'dino' ? 224 : 518),
    patchSize: num(kw, 'patch_size', family === 'dino' ? 16 : 14),
    inChans: num(kw, 'in_chans', 3),
    embedDim: num(kw, 'embed_dim'),
    depth: num(kw, 'depth'),
    numHeads: num(kw, 'num_heads'),
    mlpRatio: num(kw, 'mlp_ratio', 4),
    qkvBias: (kw.qkv_bias as boolean | undefined) ?? true,
    dropPathRate: num(kw, 'drop_path_rate', 0),
  };
  if (family === 'dino') {
    return dinoConfig('tiny', common.patchSize!, { ...common, layerNormEps: num(kw, 'layer_norm_eps', 1e-6) });
  }
  const offset = num(kw, 'interpolate_offset', 0.1);
  const antialias = Boolean(kw.interpolate_antialias ?? false);
  const ffn = (kw.ffn_layer as string | undefined) ?? 'mlp';
  if (ffn !== 'mlp' && ffn !== 'swiglufused' && ffn !== 'swiglu') {
    throw new Error(`official config: ffn_layer '${ffn}' is not supported (use mlp, swiglu or swiglufused)`);
  }
  const initValues = kw.init_values === undefined || kw.init_values === null ? null : num(kw, 'init_values');
  return dinov2Config('tiny', num(kw, 'num_register_tokens', 0), {
    ...common,
    projBias: (kw.proj_bias as boolean | undefined) ?? true,
    ffnBias: (kw.ffn_bias as boolean | undefined) ?? true,
    ffnLayer: ffn === 'mlp' ? 'mlp' : 'swiglufused',
    initValues: initValues || null,
    posEmbedInterpolation: posEmbedInterpolationOf(antialias, offset),
    interpolateOffset: offset,
    dropPathUniform: Boolean(kw.drop_path_uniform ?? false),
  });
}
