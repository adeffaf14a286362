// Configuration of the DINO (v1) and DINOv2 Vision Transformers, and the named configs of every released model.
// Facts: ../shared/reference/dino-reference.md §2.1-2.4 and §3e.

/** How the learned position embedding is resized to another patch grid (the three variants that exist). */
export type PosEmbedInterpolation =
  /** bicubic with scale_factor=((h+offset)/M, (w+offset)/M), no antialias: DINO v1 and DINOv2 without registers */
  | 'scale_factor'
  /** bicubic to an explicit size with antialias: DINOv2 with registers (hub) and HF Dinov2WithRegisters */
  | 'size_antialias'
  /** bicubic to an explicit size without antialias: HF Dinov2Model */
  | 'size';

export interface ViTConfig {
  family: 'dino' | 'dinov2';
  /** Training image size; the pos-embed table covers (imgSize/patchSize)^2 patches. */
  imgSize: number;
  patchSize: number;
  inChans: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  projBias: boolean;
  ffnBias: boolean;
  ffnLayer: 'mlp' | 'swiglufused';
  /** LayerScale init; null = no LayerScale (v1, and v2 configs without it). */
  initValues: number | null;
  numRegisterTokens: number;
  posEmbedInterpolation: PosEmbedInterpolation;
  /** Offset added to the target grid in 'scale_factor' mode (0.1 officially). */
  interpolateOffset: number;
  layerNormEps: number;
  /** Stochastic depth (training only). */
  dropPathRate: number;
  /** v2: the same rate in every block (true in the v2 train configs); v1: linear over depth. */
  dropPathUniform: boolean;
}

const base = {
  inChans: 3,
  mlpRatio: 4,
  qkvBias: true,
  projBias: true,
  ffnBias: true,
  ffnLayer: 'mlp' as const,
  layerNormEps: 1e-6,
  dropPathRate: 0,
  interpolateOffset: 0.1,
};

export const SIZES = {
  tiny: { embedDim: 192, depth: 12, numHeads: 3 },
  small: { embedDim: 384, depth: 12, numHeads: 6 },
  base: { embedDim: 768, depth: 12, numHeads: 12 },
  large: { embedDim: 1024, depth: 24, numHeads: 16 },
  giant2: { embedDim: 1536, depth: 40, numHeads: 24 },
} as const;

export function dinoConfig(size: keyof typeof SIZES, patchSize: number, over: Partial<ViTConfig> = {}): ViTConfig {
  return {
    ...base,
    ...SIZES[size],
    family: 'dino',
    imgSize: 224,
    patchSize,
    initValues: null,
    numRegisterTokens: 0,
    posEmbedInterpolation: 'scale_factor',
    dropPathUniform: false,
    ...over,
  };
}

export function dinov2Config(size: keyof typeof SIZES, registers = 0, over: Partial<ViTConfig> = {}): ViTConfig {
  return {
    ...base,
    ...SIZES[size],
    family: 'dinov2',
    imgSize: 518,
    patchSize: 14,
    initValues: 1.0,
    ffnLayer: size === 'giant2' ? 'swiglufused' : 'mlp',
    numRegisterTokens: registers,
    posEmbedInterpolation: registers > 0 ? 'size_antialias' : 'scale_factor',
    interpolateOffset: registers > 0 ? 0 : 0.1,
    dropPathUniform: true,
    ...over,
  };
}

/** Every released backbone, by its torch.hub name. */
export const NAMED_CONFIGS: Record<string, ViTConfig> = {
  dino_vits16: dinoConfig('small', 16),
  dino_vits8: dinoConfig('small', 8),
  dino_vitb16: dinoConfig('base', 16),
  dino_vitb8: dinoConfig('base', 8),
  dinov2_vits14: dinov2Config('small'),
  dinov2_vitb14: dinov2Config('base'),
  dinov2_vitl14: dinov2Config('large'),
  dinov2_vitg14: dinov2Config('giant2'),
  dinov2_vits14_reg4: dinov2Config('small', 4),
  dinov2_vitb14_reg4: dinov2Config('base', 4),
  dinov2_vitl14_reg4: dinov2Config('large', 4),
  dinov2_vitg14_reg4: dinov2Config('giant2', 4),
  // Small configs for CPU training on 28-96 px images (`dinots train` takes their sizes for either family).
  /** Test-sized. */
  vit_pico: dinoConfig('tiny', 4, { imgSize: 16, embedDim: 32, depth: 2, numHeads: 2 }),
  /** The width / depth / heads of the `dinots train` default model (vit_nano_p4_28 narrowed). */
  vit_mini_p4_28: dinoConfig('tiny', 4, { imgSize: 28, embedDim: 64, depth: 3, numHeads: 2 }),
  vit_nano_p4_28: dinoConfig('tiny', 4, { imgSize: 28, embedDim: 96, depth: 4, numHeads: 3 }),
  vit_micro_p4_28: dinoConfig('tiny', 4, { imgSize: 28, embedDim: 192, depth: 6, numHeads: 3 }),
  vit_micro_p8_64: dinoConfig('tiny', 8, { imgSize: 64, embedDim: 128, depth: 6, numHeads: 4 }),
  vit_tiny_p16_96: dinoConfig('tiny', 16, { imgSize: 96 }),
};

/** The official training arch names (main_dino.py, dinov2 vision_transformer.py): a size; the patch comes apart. */
export const OFFICIAL_ARCHS: Record<string, keyof typeof SIZES> = { vit_tiny: 'tiny', vit_small: 'small', vit_base: 'base', vit_large: 'large', vit_giant2: 'giant2' };

/** Width, depth and heads of a training arch: an official name or a named config; throws naming `what` otherwise. */
export function archSizes(arch: string, what: string): { embedDim: number; depth: number; numHeads: number } {
  const official = OFFICIAL_ARCHS[arch];
  if (official) return SIZES[official];
  const named = NAMED_CONFIGS[arch];
  if (named) return { embedDim: named.embedDim, depth: named.depth, numHeads: named.numHeads };
  throw new Error(`${what} '${arch}' is unknown: use ${[...Object.keys(OFFICIAL_ARCHS), ...Object.keys(NAMED_CONFIGS)].join(', ')}`);
}

export function namedConfig(name: string): ViTConfig {
  const c = NAMED_CONFIGS[name];
  if (!c) throw new Error(`unknown model '${name}'; known: ${Object.keys(NAMED_CONFIGS).join(', ')}`);
  return { ...c };
}
