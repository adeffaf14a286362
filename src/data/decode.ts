// Image decoding with sharp (libvips) to 8-bit RGB HWC.
//
//   decodeImage(input: string | Uint8Array, opts?: DecodeOptions): Promise<RgbImage>
//   isImagePath(path): boolean            by extension (IMAGE_EXTENSIONS)
//
// Normalisation, so every file gives the same thing as PIL's `Image.open(f).convert('RGB')` used by the official
// loaders (except for EXIF orientation, which PIL ignores and we apply, since a sideways photo helps nobody):
//   - EXIF orientation applied (the returned width/height are the displayed ones);
//   - grayscale -> R = G = B; palette -> its colours; CMYK -> sRGB (through the embedded ICC profile if any);
//   - 16-bit -> 8-bit by keeping the high byte (v >> 8, as libvips and PIL's 16-bit RGB PNG reader do);
//   - alpha is DROPPED (not composited), exactly like PIL's convert('RGB'): transparent pixels keep their stored colour.
// Errors name the file. `maxSide` downsizes huge images during decoding (JPEG shrink-on-load), keeping the aspect.
import sharp from 'sharp';
import { extname } from 'node:path';
import type { RgbImage } from './image.js';

/** Extensions treated as images when scanning folders (sharp's prebuilt decoders: no BMP/PPM). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'] as const;

export function isImagePath(path: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(path).toLowerCase());
}

export interface DecodeOptions {
  /** Longest side after decoding; larger images are downscaled (never enlarged). */
  maxSide?: number;
  /** Name used in error messages when `input` is a buffer. */
  name?: string;
}

// libvips' own thread pool is 1 thread here (see node-ecosystem notes); parallelism comes from several decodes in
// flight / worker threads. Its operation cache only wastes memory for a stream of distinct files.
sharp.cache(false);

export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : opts.name ?? '<buffer>';
  if (typeof input !== 'string' && input.length === 0) throw new Error(`cannot decode ${name}: the buffer is empty`);
  try {
    // failOn 'warning' (sharp's default is 'warning' too): a truncated file is an error, not a half-grey image.
    let pipe = sharp(input, { failOn: 'warning', limitInputPixels: 2 ** 28 }).autoOrient();
    if (opts.maxSide) pipe = pipe.resize({ width: opts.maxSide, height: opts.maxSide, fit: 'inside', withoutEnlargement: true });
    const { data, info } = await pipe
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(`cannot decode ${name}: ${msg}`);
  }
}
