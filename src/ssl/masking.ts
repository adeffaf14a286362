// BEiT-style block masking of DINOv2 (dinov2/data/masking.py MaskingGenerator), driven by our seeded Rng.
//
//   const gen = new MaskingGenerator({ inputSize: 16, maxNumPatches: 0.5 * 16 * 16 });   // train.py for 224 / patch 14
//   const mask = gen.generate(51, rng);    // Uint8Array [H*W] row-major, 1 = masked; about 51 cells (never more)
//
// Blocks are added until the target count is reached or a block attempt makes no progress:
//   cap = min(target - masked so far, maxNumPatches)
//   up to 10 tries: area ~ U(minNumPatches, cap), aspect = exp(U(ln minAspect, ln maxAspect)),
//     h = round(sqrt(area*aspect)), w = round(sqrt(area/aspect)) (Python round: half to even), needs h < H and w < W,
//     top ~ randint(0, H-h), left ~ randint(0, W-w); the block is painted when 0 < newly masked <= cap;
//     stop trying once something was painted.
import type { Rng } from '../util/rng.js';

export interface MaskingOptions {
  /** Patch grid: a side length or [height, width]. */
  inputSize: number | [number, number];
  /** Default target of generate() when it is called without one (official num_masking_patches). */
  numMaskingPatches?: number;
  minNumPatches?: number;
  /** Largest number of cells one block may add; defaults to numMaskingPatches. */
  maxNumPatches?: number;
  minAspect?: number;
  /** Defaults to 1 / minAspect. */
  maxAspect?: number;
}

/** Python's round() for floats: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export class MaskingGenerator {
  readonly height: number;
  readonly width: number;
  readonly numPatches: number;
  readonly numMaskingPatches: number;
  readonly minNumPatches: number;
  readonly maxNumPatches: number;
  readonly logAspectRatio: [number, number];

  constructor(opts: MaskingOptions) {
    const [h, w] = typeof opts.inputSize === 'number' ? [opts.inputSize, opts.inputSize] : opts.inputSize;
    if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
      throw new Error(`MaskingGenerator: inputSize must be positive integers, got ${JSON.stringify(opts.inputSize)}`);
    }
    this.height = h;
    this.width = w;
    this.numPatches = h * w;
    this.numMaskingPatches = opts.numMaskingPatches ?? 0;
    this.minNumPatches = opts.minNumPatches ?? 4;
    const maxNum = opts.maxNumPatches ?? opts.numMaskingPatches;
    if (maxNum === undefined) throw new Error('MaskingGenerator: give maxNumPatches (train.py uses 0.5 * number of patches) or numMaskingPatches');
    this.maxNumPatches = maxNum;
    const minAspect = opts.minAspect ?? 0.3;
    const maxAspect = opts.maxAspect || 1 / minAspect;
    this.logAspectRatio = [Math.log(minAspect), Math.log(maxAspect)];
  }

  /** A fresh mask [H*W] (row-major, 1 = masked) with at most `numMaskingPatches` cells. */
  generate(rng: Rng, numMaskingPatches = this.numMaskingPatches): Uint8Array {
    const mask = new Uint8Array(this.numPatches);
    let count = 0;
    while (count < numMaskingPatches) {
      const cap = Math.min(numMaskingPatches - count, this.maxNumPatches);
      const delta = this.addBlock(mask, cap, rng);
      if (delta === 0) break;
      count += delta;
    }
    return mask;
  }

  /** Up to 10 tries to paint one block adding between 1 and `cap` new cells; returns how many were added. */
  private addBlock(mask: Uint8Array, cap: number, rng: Rng): number {
    const H = this.height;
    const W = this.width;
    for (let attempt = 0; attempt < 10; attempt++) {
      const targetArea = rng.uniform(this.minNumPatches, cap);
      const aspect = Math.exp(rng.uniform(this.logAspectRatio[0], this.logAspectRatio[1]));
      const h = roundHalfEven(Math.sqrt(targetArea * aspect));
      const w = roundHalfEven(Math.sqrt(targetArea / aspect));
      if (w >= W || h >= H) continue;
      const top = rng.randint(0, H - h);
      const left = rng.randint(0, W - w);
      let alreadyMasked = 0;
      for (let i = top; i < top + h; i++) for (let j = left; j < left + w; j++) alreadyMasked += mask[i * W + j]!;
      const fresh = h * w - alreadyMasked;
      if (fresh > 0 && fresh <= cap) {
        for (let i = top; i < top + h; i++) mask.fill(1, i * W + left, i * W + left + w);
        return fresh;
      }
    }
    return 0;
  }
}
