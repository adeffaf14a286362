// DINO multi-crop augmentation (DINO v1 main_dino.py DataAugmentationDINO; DINOv2 dinov2/data/augmentations.py).
//
//   const aug = new DataAugmentationDINO(dinoV1Augmentation({ localCropsNumber: 6 }));   // or dinoV2Augmentation()
//   const { global, local } = aug.apply(image, new Rng([seed, epoch, index]));          // Float32Array CHW each
//
// Per crop, in this order (both versions): RandomResizedCrop (bicubic) -> horizontal flip -> colour jitter (applied
// with p 0.8, ops in random order) -> grayscale (p 0.2) -> Gaussian blur (p per crop) -> solarize (2nd global crop
// only) -> normalise. Crops are drawn global 1, global 2, then the locals, each consuming the rng in that order, so
// the output is a pure function of (image, rng state).
//
// Blur: v1 uses Pillow's GaussianBlur(radius ~ U(0.1, 2)) with p = (1.0, 0.1, 0.5) for (global 1, global 2, local).
// DINOv2's GaussianBlur wraps torchvision's kernel-9 blur in RandomApply(p = 1 - p), so the official code effectively
// blurs with (0.0, 0.9, 0.5) (reference §2.12). dinoV2Augmentation() uses the intended (1.0, 0.1, 0.5) unless
// `blurBugCompat: true`, which reproduces the inverted probabilities of the released checkpoints' training.
import type { RgbImage } from './image.js';
import { IMAGENET_MEAN, IMAGENET_STD, checkRgb } from './image.js';
import {
  colorJitter,
  colorJitterParams,
  DEFAULT_RATIO,
  gaussianBlurKernel,
  gaussianBlurPil,
  grayscale,
  hflip,
  normalize,
  randomResizedCrop,
  solarize,
  type ColorJitterStrength,
} from './transforms.js';
import type { Rng } from '../util/rng.js';

export interface MultiCropConfig {
  globalCropsSize: number;
  globalCropsScale: [number, number];
  localCropsNumber: number;
  localCropsSize: number;
  localCropsScale: [number, number];
  /** Aspect-ratio range of RandomResizedCrop (default 3/4..4/3). */
  ratio: [number, number];
  flipP: number;
  jitter: ColorJitterStrength;
  jitterP: number;
  grayscaleP: number;
  /** 'pil': Pillow GaussianBlur(radius = sigma) (v1); 'kernel9': torchvision GaussianBlur(9, sigma) (v2). */
  blur: 'pil' | 'kernel9';
  blurSigma: [number, number];
  /** Intended blur probability for [global 1, global 2, local]. */
  blurP: [number, number, number];
  /** Use 1 - blurP, as the official DINOv2 code effectively does. */
  blurBugCompat: boolean;
  /** Solarize probability of global crop 2 (global 1 and locals never). */
  solarizeP: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** DINO v1 defaults (main_dino.py): 2 x 224 at (0.4, 1), 8 x 96 at (0.05, 0.4), Pillow blur (1.0, 0.1, 0.5). */
export function dinoV1Augmentation(overrides: Partial<MultiCropConfig> = {}): MultiCropConfig {
  return {
    globalCropsSize: 224,
    globalCropsScale: [0.4, 1],
    localCropsNumber: 8,
    localCropsSize: 96,
    localCropsScale: [0.05, 0.4],
    ratio: [...DEFAULT_RATIO],
    flipP: 0.5,
    jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 },
    jitterP: 0.8,
    grayscaleP: 0.2,
    blur: 'pil',
    blurSigma: [0.1, 2],
    blurP: [1.0, 0.1, 0.5],
    blurBugCompat: false,
    solarizeP: 0.2,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    ...overrides,
  };
}

/**
 * DINOv2 defaults (ssl_default_config.yaml): 2 x 224 at (0.32, 1), 8 locals at (0.05, 0.32) of 96 px, or 98 px with
 * `patchSize: 14` (so a local crop is 7x7 patches), torchvision kernel-9 blur with the intended probabilities.
 */
export function dinoV2Augmentation(opts: { patchSize?: number; blurBugCompat?: boolean } & Partial<MultiCropConfig> = {}): MultiCropConfig {
  const { patchSize, ...overrides } = opts;
  return dinoV1Augmentation({
    globalCropsScale: [0.32, 1],
    localCropsScale: [0.05, 0.32],
    localCropsSize: patchSize === 14 ? 98 : 96,
    blur: 'kernel9',
    ...overrides,
  });
}

export interface MultiCropViews {
  /** The 2 global crops, each [3, globalCropsSize, globalCropsSize] CHW, normalised. */
  global: Float32Array[];
  /** The local crops, each [3, localCropsSize, localCropsSize]. */
  local: Float32Array[];
}

export class DataAugmentationDINO {
  readonly config: MultiCropConfig;

  constructor(config: MultiCropConfig = dinoV1Augmentation()) {
    const c = config;
    for (const [k, v] of Object.entries({ globalCropsSize: c.globalCropsSize, localCropsSize: c.localCropsSize })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`multi-crop: ${k} ${v} must be a positive integer`);
    }
    if (!Number.isInteger(c.localCropsNumber) || c.localCropsNumber < 0) throw new Error(`multi-crop: localCropsNumber ${c.localCropsNumber} must be >= 0`);
    for (const [k, s] of Object.entries({ globalCropsScale: c.globalCropsScale, localCropsScale: c.localCropsScale, ratio: c.ratio, blurSigma: c.blurSigma })) {
      if (!(s[0] > 0 && s[0] <= s[1])) throw new Error(`multi-crop: ${k} [${s}] must be an increasing pair of positive numbers`);
    }
    if (c.blur !== 'pil' && c.blur !== 'kernel9') throw new Error(`multi-crop: blur '${c.blur}' must be 'pil' or 'kernel9'`);
    this.config = c;
  }

  /** Effective blur probability of crop kind 0 (global 1), 1 (global 2) or 2 (local). */
  blurProbability(kind: 0 | 1 | 2): number {
    const p = this.config.blurP[kind];
    return this.config.blurBugCompat ? 1 - p : p;
  }

  apply(image: RgbImage, rng: Rng): MultiCropViews {
    checkRgb(image, 'multi-crop input');
    const c = this.config;
    const global = [this.crop(image, rng, c.globalCropsSize, c.globalCropsScale, 0), this.crop(image, rng, c.globalCropsSize, c.globalCropsScale, 1)];
    const local: Float32Array[] = [];
    for (let i = 0; i < c.localCropsNumber; i++) local.push(this.crop(image, rng, c.localCropsSize, c.localCropsScale, 2));
    return { global, local };
  }

  private crop(image: RgbImage, rng: Rng, size: number, scale: [number, number], kind: 0 | 1 | 2): Float32Array {
    const c = this.config;
    const img = randomResizedCrop(image, size, scale, c.ratio, rng);
    if (rng.random() < c.flipP) hflip(img);
    if (rng.random() < c.jitterP) colorJitter(img, colorJitterParams(rng, c.jitter));
    if (rng.random() < c.grayscaleP) grayscale(img);
    if (rng.random() < this.blurProbability(kind)) {
      const sigma = rng.uniform(c.blurSigma[0], c.blurSigma[1]);
      if (c.blur === 'pil') gaussianBlurPil(img, sigma);
      else gaussianBlurKernel(img, sigma, 9);
    }
    if (kind === 1 && rng.random() < c.solarizeP) solarize(img);
    return normalize(img, c.mean, c.std).data;
  }
}
