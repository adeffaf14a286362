// DINOv2 iBOT masked-patch loss (dinov2/loss/ibot_patch_loss.py iBOTPatchLoss).
//
//   const ibot = new IBOTPatchLoss(K);                            // studentTemp 0.1, centerMomentum 0.9
//   // teacher side (no gradient): t = teacher head output of the M masked patches [M, K] (or [1, M, K])
//   const probs = ibot.softmaxCenterTeacher(t, temp);             // applies the pending center update first
//   ibot.updateCenter(tPadded);                                   // pending; [1, U, K] (official: the padded buffer) or [M, K]
//   //   or, with sinkhorn_knopp: const probs = ibot.sinkhornKnoppTeacher(t, temp, M);
//   // student side (differentiable): s = student head output of the same masked patches [M, K]
//   const loss = ibot.forwardMasked(s, probs, collated.masks, { nMaskedPatches: M, masksWeight: collated.masksWeight });
//   // SSLMetaArch multiplies it by 2 (loss_scales) * 1/2 (ibot_loss_scale).
//
// forwardMasked: -sum_i w_i * sum_k t_ik log_softmax(s_i / studentTemp)_k / nImages, where w_i = 1/(masked patches of
//   the image patch i belongs to) and nImages = masks.shape[0] (all global-crop images, masked or not).
// forward (unmasked API): student/teacher [B, N, K] over all patches; per image the masked mean, then mean over images.
// State: center [1, 1, K]; stateDict()/loadStateDict() with key 'center' (a pending update is folded in before saving).
import { tf, type Tensor } from '../backend/tf.js';
import { CenteredLoss, TeacherCenter } from './center.js';
import { defaultMasksWeight, type MaskBatch } from './collate.js';
import { rowDot, studentLogSoftmax } from './cross_entropy.js';
import { sinkhornKnopp } from './sinkhorn_knopp.js';

type Scalar = tf.Scalar;

export interface ForwardMaskedOptions {
  /** Keep only the first n per-patch losses (official n_masked_patches; rows past it are padding). */
  nMaskedPatches?: number;
  /** Per masked patch weight [M] (collateMasks' masksWeight); default 1/(masked count of its image). */
  masksWeight?: Float32Array | Tensor;
}

export class IBOTPatchLoss extends CenteredLoss {
  constructor(
    readonly patchOutDim: number,
    readonly studentTemp = 0.1,
    centerMomentum = 0.9,
  ) {
    super(new TeacherCenter([1, 1, patchOutDim], centerMomentum, 'IBOTPatchLoss'));
  }

  /** softmax((t - center) / temp) after applying any pending update. Keeps t's rank: [M, K] -> [M, K], [1, M, K] -> [1, M, K]. */
  softmaxCenterTeacher(teacherPatchTokens: Tensor, teacherTemp: number): Tensor {
    this.checkK(teacherPatchTokens);
    return this.center.softmaxCentered(teacherPatchTokens, teacherTemp);
  }

  /** Sinkhorn-Knopp over the masked patches t [M, K]; nMaskedPatches is the official (all-reduced) B, normally M. */
  sinkhornKnoppTeacher(teacherOutput: Tensor, teacherTemp: number, nMaskedPatches: number, nIterations = 3): Tensor {
    this.checkK(teacherOutput);
    return sinkhornKnopp(teacherOutput, teacherTemp, nIterations, nMaskedPatches);
  }

  /**
   * Records the pending center update from teacher patch outputs [B, N, K]: the mean over N, then over B (official
   * reduce_center_update). A 2-D [M, K] input is read as [1, M, K]. Note the official training passes the whole
   * zero-padded upperbound buffer [1, U, K], so padding rows take part in the mean.
   */
  updateCenter(teacherPatchTokens: Tensor): void {
    this.checkK(teacherPatchTokens);
    tf.tidy(() => {
      const t = teacherPatchTokens.rank === 2 ? teacherPatchTokens.expandDims(0) : teacherPatchTokens;
      const perImage = tf.div(tf.sum(t, 1), t.shape[1]!);
      this.center.setPending(tf.div(tf.sum(perImage, 0, true), t.shape[0]!));
    });
  }

  applyCenterUpdate(): void {
    this.center.apply();
  }

  /** Loss over the masked patches only (see the header). studentMasked and teacherMasked are [M, K]. */
  forwardMasked(studentMasked: Tensor, teacherMasked: Tensor, masks: MaskBatch, opts: ForwardMaskedOptions = {}): Scalar {
    this.checkK(studentMasked);
    const nImages = masks.shape[0];
    return tf.tidy(() => {
      let loss = rowDot(teacherMasked, studentLogSoftmax(studentMasked, this.studentTemp));
      if (opts.nMaskedPatches !== undefined) loss = loss.slice(0, opts.nMaskedPatches);
      const w = opts.masksWeight ?? defaultMasksWeight(masks);
      const weight = w instanceof Float32Array ? tf.tensor1d(w) : w;
      if (weight.size !== loss.size) {
        throw new Error(`IBOTPatchLoss.forwardMasked: ${loss.size} per-patch losses but ${weight.size} masks weights; pass nMaskedPatches or matching masksWeight`);
      }
      return tf.div(tf.neg(tf.sum(tf.mul(loss, weight))), nImages) as Scalar;
    });
  }

  /** Unmasked API: student/teacher [B, N, K] for all patches, masks [B, N]. */
  forward(studentPatchTokens: Tensor, teacherPatchTokens: Tensor, masks: MaskBatch): Scalar {
    this.checkK(studentPatchTokens);
    const [B, N] = masks.shape;
    if (studentPatchTokens.rank !== 3 || studentPatchTokens.shape[0] !== B || studentPatchTokens.shape[1] !== N) {
      throw new Error(`IBOTPatchLoss.forward: studentPatchTokens must be [${B}, ${N}, K] to match masks [${B}, ${N}], got [${studentPatchTokens.shape}]`);
    }
    return tf.tidy(() => {
      const perPatch = rowDot(teacherPatchTokens, studentLogSoftmax(studentPatchTokens, this.studentTemp)); // [B, N]
      const m = tf.tensor2d(Float32Array.from(masks.data), [B, N]);
      const perImage = tf.div(tf.sum(tf.mul(perPatch, m), -1), tf.maximum(tf.sum(m, -1), 1));
      return tf.neg(tf.mean(perImage)) as Scalar;
    });
  }

  private checkK(t: Tensor): void {
    if ((t.rank !== 2 && t.rank !== 3) || t.shape[t.rank - 1] !== this.patchOutDim) {
      throw new Error(`IBOTPatchLoss: patch outputs must be [M, ${this.patchOutDim}] or [B, N, ${this.patchOutDim}], got [${t.shape}]`);
    }
  }
}
