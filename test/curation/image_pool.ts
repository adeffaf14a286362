// A small on-disk image pool for curation tests and report figures: MNIST digits and crops of public-domain photos
// (Debian python3-skimage), plus planted near-duplicates made with sharp (crop, resize, JPEG re-encode, colour shift),
// plus out-of-distribution images (noise, photo crops) for the retrieval check.
import sharp from 'sharp';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MnistDataset } from '../../src/data/datasets.js';
import { Rng } from '../../src/util/rng.js';

export const PHOTO_DIR = '/usr/lib/python3/dist-packages/skimage/data';
const PHOTOS = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png', 'hubble_deep_field.jpg', 'retina.jpg', 'ihc.png', 'brick.png', 'grass.png', 'gravel.png', 'color.png'];

/** The photos, or an error naming the package: the README's install line brings python3-skimage, so a test that
 * needs them fails (never skips) on a machine set up without it. */
export function photos(): string[] {
  const missing = PHOTOS.map((p) => join(PHOTO_DIR, p)).filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`${missing.length} test photos missing (${missing[0]}, ...): install Debian's python3-skimage, as the README's install line does`);
  return PHOTOS.map((p) => join(PHOTO_DIR, p));
}

export type Augmentation = 'crop' | 'resize' | 'jpeg' | 'colour';
export const AUGMENTATIONS: Augmentation[] = ['crop', 'resize', 'jpeg', 'colour'];

async function mnistPng(ds: MnistDataset, i: number, size: number): Promise<Buffer> {
  const s = await ds.get(i);
  return sharp(Buffer.from(s.image.data), { raw: { width: s.image.width, height: s.image.height, channels: 3 } })
    .resize(size, size, { kernel: 'lanczos3' })
    .png()
    .toBuffer();
}

async function photoCrop(file: string, rng: Rng, size: number): Promise<Buffer> {
  const meta = await sharp(file).metadata();
  const side = Math.floor(Math.min(meta.width!, meta.height!) * rng.uniform(0.35, 0.6));
  const left = rng.randint(0, meta.width! - side);
  const top = rng.randint(0, meta.height! - side);
  return sharp(file).extract({ left, top, width: side, height: side }).resize(size, size).removeAlpha().png().toBuffer();
}

export function noisePng(rng: Rng, size: number): Promise<Buffer> {
  const data = Buffer.alloc(size * size * 3);
  // Smooth-ish noise: random 8x8 blocks, so it is not trivially far from everything.
  const cells = new Uint8Array(8 * 8 * 3).map(() => rng.randint(0, 255));
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = Math.min(255, Math.max(0, cells[((Math.floor((y * 8) / size) * 8 + Math.floor((x * 8) / size)) * 3) + c]! + rng.randint(-40, 40)));
  return sharp(data, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/** A near-copy of an encoded image; returns the bytes and the file extension. */
export async function augment(src: Buffer, kind: Augmentation, rng: Rng): Promise<{ bytes: Buffer; ext: string }> {
  const meta = await sharp(src).metadata();
  const w = meta.width!;
  const h = meta.height!;
  switch (kind) {
    case 'crop': {
      // Keep 85-92% of each side, then back to the original size.
      const f = rng.uniform(0.85, 0.92);
      const cw = Math.round(w * f);
      const ch = Math.round(h * f);
      const left = rng.randint(0, w - cw);
      const top = rng.randint(0, h - ch);
      return { bytes: await sharp(src).extract({ left, top, width: cw, height: ch }).resize(w, h).png().toBuffer(), ext: 'png' };
    }
    case 'resize':
      return { bytes: await sharp(await sharp(src).resize(Math.round(w * 0.5), Math.round(h * 0.5)).png().toBuffer()).resize(w, h).png().toBuffer(), ext: 'png' };
    case 'jpeg':
      return { bytes: await sharp(src).jpeg({ quality: 30 }).toBuffer(), ext: 'jpg' };
    case 'colour':
      return { bytes: await sharp(src).modulate({ brightness: rng.uniform(0.88, 1.12), saturation: rng.uniform(0.8, 1.2), hue: rng.randint(-8, 8) }).png().toBuffer(), ext: 'png' };
  }
}

export interface PlantedPool {
  dir: string;
  files: string[];
  /** (original file, copy file) pairs. */
  pairs: [string, string][];
}

/** `digits` MNIST digits and `photos` photo crops, and `copies` augmented copies of random ones, in `dir`. */
export async function buildPlantedPool(dir: string, opts: { digits: number; photos: number; copies: number; size?: number; seed?: number }): Promise<PlantedPool> {
  mkdirSync(dir, { recursive: true });
  const size = opts.size ?? 64;
  const rng = new Rng(opts.seed ?? 0);
  const mnist = new MnistDataset('test', { limit: 2000 });
  const originals: { file: string; bytes: Buffer }[] = [];
  for (let i = 0; i < opts.digits; i++) originals.push({ file: join(dir, `digit_${String(i).padStart(4, '0')}.png`), bytes: await mnistPng(mnist, i * 7, size) });
  const photoFiles = opts.photos > 0 ? photos() : [];
  for (let i = 0; i < opts.photos; i++) originals.push({ file: join(dir, `photo_${String(i).padStart(4, '0')}.png`), bytes: await photoCrop(photoFiles[i % photoFiles.length]!, rng, size) });
  const pairs: [string, string][] = [];
  const files: string[] = [];
  for (const o of originals) {
    await sharp(o.bytes).toFile(o.file);
    files.push(o.file);
  }
  for (let c = 0; c < opts.copies; c++) {
    const src = originals[rng.randint(0, originals.length - 1)]!;
    const kind = AUGMENTATIONS[c % AUGMENTATIONS.length]!;
    const { bytes, ext } = await augment(src.bytes, kind, rng);
    const file = join(dir, `copy_${String(c).padStart(4, '0')}_${kind}.${ext}`);
    await sharp(bytes).toFile(file);
    files.push(file);
    pairs.push([src.file, file]);
  }
  return { dir, files, pairs };
}

/** Pool for the retrieval check: in-distribution digits plus photo crops and noise; seed: other digits. */
export async function buildRetrievalPool(dir: string, opts: { inDist: number; photos: number; noise: number; seeds: number; size?: number; seed?: number }): Promise<{ pool: string; seed: string; inDistribution: (path: string) => boolean }> {
  const size = opts.size ?? 64;
  const rng = new Rng(opts.seed ?? 1);
  const pool = join(dir, 'pool');
  const seed = join(dir, 'seed');
  mkdirSync(pool, { recursive: true });
  mkdirSync(seed, { recursive: true });
  const mnist = new MnistDataset('test', { limit: 5000 });
  for (let i = 0; i < opts.inDist; i++) await sharp(await mnistPng(mnist, 1000 + i * 3, size)).toFile(join(pool, `digit_${i}.png`));
  const photoFiles = opts.photos > 0 ? photos() : [];
  for (let i = 0; i < opts.photos; i++) await sharp(await photoCrop(photoFiles[i % photoFiles.length]!, rng, size)).toFile(join(pool, `photo_${i}.png`));
  for (let i = 0; i < opts.noise; i++) await sharp(await noisePng(rng, size)).toFile(join(pool, `noise_${i}.png`));
  for (let i = 0; i < opts.seeds; i++) await sharp(await mnistPng(mnist, 4000 + i, size)).toFile(join(seed, `seed_${i}.png`));
  return { pool, seed, inDistribution: (p) => /digit_\d+\.png$/.test(p) };
}
