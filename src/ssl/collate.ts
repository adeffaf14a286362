// iBOT mask collation of DINOv2 (dinov2/data/collate.py collate_data_and_cast, the mask part), on plain typed arrays.
//
//   const gen = new MaskingGenerator({ inputSize: [h, w], maxNumPatches: 0.5 * h * w });
//   const c = collateMasks(2 * B, h * w, gen, rng);          // for the 2B global-crop images of a batch
//   c.masks          Uint8Array [nImages * N] with shape c.shape = [nImages, N], 1 = masked (image-major, crop-major
//                    order like the collated global crops)
//   c.maskIndices    Int32Array [M]: flat indices into masks (masks.flatten().nonzero()), M = c.nMaskedPatches
//   c.masksWeight    Float32Array [M]: 1 / (masked count of that patch's image)
//   c.upperbound     sum over masked images of int(N * probs[i+1]): the padded buffer size (>= M)
//
// int(nImages * maskProbability) images get a mask, image i of them int(N * U(probs[i], probs[i+1])) cells with
// probs = linspace(ratioMin, ratioMax, n + 1) (stratified ratios); the others get none; then the list is shuffled.
// probs and the draws use float32 arithmetic like the official torch.linspace / tensor maths, so the counts and the
// upperbound agree with it exactly (torch's vectorised linspace path, used from 16 values on, may round differently).
import type { Rng } from '../util/rng.js';
import type { MaskingGenerator } from './masking.js';

/** A batch of flattened patch masks: data [shape[0] * shape[1]], 1 = masked. */
export interface MaskBatch {
  data: Uint8Array;
  shape: [number, number];
}

export interface CollatedMasks extends MaskBatch {
  maskIndices: Int32Array;
  masksWeight: Float32Array;
  nMaskedPatches: number;
  upperbound: number;
}

export interface CollateMaskOptions {
  maskRatioMinMax?: [number, number];
  maskProbability?: number;
}

const f32 = Math.fround;

/** torch.linspace(start, end, steps) in float32 (the scalar CPU kernel: start + step*i below halfway, end - step*(steps-1-i) above). */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) out[0] = start;
  if (steps <= 1) return out;
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)));
  return out;
}

/** The probs boundaries and upperbound for a batch: deterministic given nImages, N and the options. */
export function maskRatioBins(nImages: number, nTokens: number, opts: CollateMaskOptions = {}): { nMasked: number; probs: Float32Array; upperbound: number } {
  const [lo, hi] = opts.maskRatioMinMax ?? [0.1, 0.5];
  const nMasked = Math.floor(nImages * (opts.maskProbability ?? 0.5));
  const probs = linspaceFloat32(lo, hi, nMasked + 1);
  let upperbound = 0;
  for (let i = 0; i < nMasked; i++) upperbound += Math.trunc(f32(nTokens * probs[i + 1]!));
  return { nMasked, probs, upperbound };
}

/** Draws the masks of one batch of `nImages` global crops (N = nTokens patches each) and derives the index tensors. */
export function collateMasks(nImages: number, nTokens: number, generator: MaskingGenerator, rng: Rng, opts: CollateMaskOptions = {}): CollatedMasks {
  if (generator.numPatches !== nTokens) {
    throw new Error(`collateMasks: nTokens (${nTokens}) differs from the masking generator's grid (${generator.height}x${generator.width})`);
  }
  const { nMasked, probs, upperbound } = maskRatioBins(nImages, nTokens, opts);
  const masks: Uint8Array[] = [];
  for (let i = 0; i < nImages; i++) {
    if (i < nMasked) {
      // random.uniform(a, b) = a + (b - a) * random(), evaluated on float32 tensors.
      const a = probs[i]!;
      const ratio = f32(a + f32(f32(probs[i + 1]! - a) * f32(rng.random())));
      masks.push(generator.generate(rng, Math.trunc(f32(nTokens * ratio))));
    } else {
      masks.push(generator.generate(rng, 0));
    }
  }
  rng.shuffle(masks);
  const data = new Uint8Array(nImages * nTokens);
  masks.forEach((m, i) => data.set(m, i * nTokens));
  return { ...deriveMaskTensors({ data, shape: [nImages, nTokens] }), upperbound };
}

/** The deterministic part of the collation: indices, weights and count from given masks (upperbound not included). */
export function deriveMaskTensors(masks: MaskBatch): Omit<CollatedMasks, 'upperbound'> {
  const maskIndices: number[] = [];
  for (let i = 0; i < masks.data.length; i++) if (masks.data[i]) maskIndices.push(i);
  return {
    data: masks.data,
    shape: masks.shape,
    maskIndices: Int32Array.from(maskIndices),
    masksWeight: defaultMasksWeight(masks),
    nMaskedPatches: maskIndices.length,
  };
}

/** Per masked patch (row-major order): 1 / max(1, masked count of its image), in float32. */
export function defaultMasksWeight(masks: MaskBatch): Float32Array {
  const [B, N] = masks.shape;
  if (masks.data.length !== B * N) throw new Error(`masks: data has ${masks.data.length} values, shape [${B}, ${N}] needs ${B * N}`);
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let j = 0; j < N; j++) count += masks.data[b * N + j] ? 1 : 0;
    const w = f32(1 / Math.max(count, 1));
    for (let j = 0; j < count; j++) out.push(w);
  }
  return Float32Array.from(out);
}
