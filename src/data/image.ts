// The two in-memory image layouts of the data pipeline.
//   RgbImage: what decoding produces and datasets return: 8-bit RGB, HWC (r,g,b,r,g,b,...), row-major.
//   ChwImage: what augmentations work on and models consume: float32 planar CHW (3 planes of height*width), values in
//             [0, 1] until `normalize`, like torchvision's ToTensor output.

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface ChwImage {
  data: Float32Array;
  width: number;
  height: number;
}

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Throws a clear error when `img` is not an RGB HWC uint8 image of consistent size. */
export function checkRgb(img: RgbImage, what = 'image'): void {
  if (!(img.data instanceof Uint8Array) || !(img.width > 0) || !(img.height > 0) || img.data.length !== img.width * img.height * 3) {
    throw new Error(`${what}: expected RGB uint8 HWC data of ${img.width}x${img.height}x3 bytes, got ${img.data?.length}`);
  }
}

/** A crop box in pixels, like torchvision's (top, left, height, width). */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** uint8 HWC -> float CHW in [0, 1] (torchvision ToTensor: x / 255 in float32). */
export function rgbToChw(img: RgbImage): ChwImage {
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0, q = 0; p < plane; p++, q += 3) {
    out[p] = data[q]! / 255;
    out[plane + p] = data[q + 1]! / 255;
    out[2 * plane + p] = data[q + 2]! / 255;
  }
  return { data: out, width, height };
}

/** Python's round(): halves go to the even neighbour (torchvision's crop arithmetic relies on it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
