// Evaluation preprocessing (DINO v1 eval_knn/eval_linear and DINOv2 make_classification_eval_transform):
//   Resize(256, bicubic, Pillow semantics) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet mean/std).
//
//   evalTransform(img: RgbImage, opts?: EvalTransformOptions): Float32Array   CHW [3, crop, crop], normalised
//   toNormalizedChw(img: RgbImage, mean?, std?): ChwImage                     ToTensor + Normalize only
//   nativeAspectTransform(img, opts: NativeAspectOptions): ChwImage            keeps the aspect ratio; each side a
//                                                                              multiple of the patch size
// The resize works in uint8 exactly like Pillow, so results match the official code to the float32 ulp.
import { IMAGENET_MEAN, IMAGENET_STD, checkRgb, rgbToChw, type ChwImage, type RgbImage } from './image.js';
import { resizeRgbPil } from './resample.js';
import { centerCrop, normalize, resizeShorter, shorterSideSize } from './transforms.js';

export interface EvalTransformOptions {
  /** Shorter side after the resize (default 256). */
  resizeSize?: number;
  /** Side of the centred square crop (default 224). */
  cropSize?: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/** ToTensor (x / 255) + Normalize: uint8 HWC -> normalised float32 CHW. */
export function toNormalizedChw(img: RgbImage, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): ChwImage {
  return normalize(rgbToChw(img), mean, std);
}

/** Resize(resizeSize) -> CenterCrop(cropSize) -> normalise; returns [3, cropSize, cropSize] float32 CHW. */
export function evalTransform(img: RgbImage, opts: EvalTransformOptions = {}): Float32Array {
  const resizeSize = opts.resizeSize ?? 256;
  const cropSize = opts.cropSize ?? 224;
  if (!(resizeSize >= 1) || !(cropSize >= 1)) throw new Error(`evalTransform: resizeSize ${resizeSize} and cropSize ${cropSize} must be positive`);
  checkRgb(img, 'evalTransform');
  const crop = centerCrop(resizeShorter(img, resizeSize), cropSize, cropSize);
  return toNormalizedChw(crop, opts.mean, opts.std).data;
}

export interface NativeAspectOptions {
  /** Patch size; both output sides are multiples of it (e.g. 14 or 16). */
  patchSize: number;
  /** Target shorter side before rounding (default 224). */
  shorterSide?: number;
  /** Upper bound on the longer side before rounding (default: none). */
  maxSide?: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * Resizes keeping the aspect ratio (shorter side -> `shorterSide`, longer side capped at `maxSide`), then rounds each
 * side to the nearest multiple of the patch size (at least one patch) and resizes straight to that size, so the
 * distortion is under half a patch per side and no pixels are cut. For attention maps and dense features.
 */
export function nativeAspectTransform(img: RgbImage, opts: NativeAspectOptions): ChwImage {
  const p = opts.patchSize;
  if (!(p >= 1)) throw new Error(`nativeAspectTransform: patchSize ${p} must be positive`);
  checkRgb(img, 'nativeAspectTransform');
  let { height, width } = shorterSideSize(img.height, img.width, opts.shorterSide ?? 224);
  if (opts.maxSide && Math.max(height, width) > opts.maxSide) {
    const f = opts.maxSide / Math.max(height, width);
    height *= f;
    width *= f;
  }
  const h = Math.max(p, Math.round(height / p) * p);
  const w = Math.max(p, Math.round(width / p) * p);
  return toNormalizedChw(resizeRgbPil(img, w, h), opts.mean, opts.std);
}
