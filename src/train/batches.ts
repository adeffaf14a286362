// From a loader batch's crops to the trainer's SSLBatch: tensors in the trainer's layout, the student's resized global
// crops when distilling across patch sizes, and the iBOT masks. Shared by the training thread and the data-parallel
// replicas (replica_worker.ts), which build their batches the same way from their share of the crops.
import { tf } from '../backend/tf.js';
import { collateMasks, deriveMaskTensors, type CollatedMasks } from '../ssl/collate.js';
import { MaskingGenerator } from '../ssl/masking.js';
import { concatArrays } from '../util/arrays.js';
import { Rng } from '../util/rng.js';
import type { SSLConfig } from './config.js';
import type { SSLNetwork } from './networks.js';
import type { SSLBatch } from './trainer.js';

/**
 * The masks of one iteration: a function of seed, iteration and replica only, so resume needs no RNG state. Replica 0
 * (the only one of a one-process run) draws exactly what a run without data parallelism draws.
 */
export function masksForIteration(cfg: SSLConfig, gen: MaskingGenerator, nImages: number, iteration: number, replica = 0): CollatedMasks {
  return collateMasks(nImages, gen.numPatches, gen, new Rng([cfg.train.seed, iteration, 0x4d41, ...(replica ? [replica] : [])]), {
    maskRatioMinMax: cfg.ibot.mask_ratio_min_max,
    maskProbability: cfg.ibot.mask_sample_probability,
  });
}

/** Every patch selected (distillation without masking): the iBOT loss becomes the mean over all patches. */
export function allPatchMasks(nImages: number, nTokens: number): CollatedMasks {
  const m = deriveMaskTensors({ data: new Uint8Array(nImages * nTokens).fill(1), shape: [nImages, nTokens] });
  return { ...m, upperbound: m.nMaskedPatches };
}

export interface BatchBuilder {
  /** `crops`: the loader's crops of B images each, crop-major ([g1, g2, l1, ...], each [B, 3, S, S] flat). */
  toBatch(crops: Float32Array[], iteration: number): SSLBatch;
  dispose(batch: SSLBatch): void;
}

/** Batches of B images for `student` (whose global side is `studentGlobalSize`), drawing the masks of `replica`. */
export function batchBuilder(cfg: SSLConfig, student: SSLNetwork, studentGlobalSize: number, distilling: boolean, B: number, replica = 0): BatchBuilder {
  const { local_crops_number: nLocal, global_crops_size: G, local_crops_size: Lc } = cfg.crops;
  const Gs = studentGlobalSize;
  const grid = Gs / student.backbone.config.patchSize;
  // Masks for iBOT (and the student's masked input): all patches when distilling without masking, none for a recipe
  // that never masks (mask_sample_probability 0).
  const maskStudentInput = !distilling || cfg.distill.masking;
  const useMasks = !maskStudentInput || cfg.ibot.mask_sample_probability > 0;
  const maskGen = new MaskingGenerator({ inputSize: [grid, grid], maxNumPatches: 0.5 * grid * grid });
  return {
    toBatch(crops, iteration) {
      const global = tf.tensor(concatArrays(Float32Array, crops.slice(0, 2)), [2 * B, 3, G, G]);
      const local = nLocal > 0 ? tf.tensor(concatArrays(Float32Array, crops.slice(2)), [nLocal * B, 3, Lc, Lc]) : null;
      // NCHW → NHWC for the resize and back; only when the student's patch grid needs another side (distillation).
      const studentGlobal = Gs !== G ? tf.tidy(() => tf.image.resizeBilinear(global.transpose([0, 2, 3, 1]) as tf.Tensor4D, [Gs, Gs], false, true).transpose([0, 3, 1, 2])) : undefined;
      const masks = !useMasks ? null : maskStudentInput ? masksForIteration(cfg, maskGen, 2 * B, iteration, replica) : allPatchMasks(2 * B, grid * grid);
      return { global, studentGlobal, local, nLocal, masks, maskStudentInput };
    },
    dispose: (b) => [b.global, b.local, b.studentGlobal].forEach((t) => t?.dispose()),
  };
}
