// The soft cross-entropy every DINO-family loss is built from: per row -sum_k t_k * log_softmax(s / studentTemp)_k.
import { tf, type Tensor } from '../backend/tf.js';

/** log_softmax(student / studentTemp) over the last axis (differentiable). */
export function studentLogSoftmax(student: Tensor, studentTemp: number): Tensor {
  return tf.logSoftmax(tf.div(student, studentTemp), -1);
}

/** sum_k t_k * lsm_k over the last axis: one value per row (note: NOT negated, like the official `lossfunc`). */
export function rowDot(teacherProbs: Tensor, logProbs: Tensor): Tensor {
  if (teacherProbs.shape.join() !== logProbs.shape.join()) {
    throw new Error(`cross entropy: teacher probabilities [${teacherProbs.shape}] and student outputs [${logProbs.shape}] must have the same shape`);
  }
  return tf.sum(tf.mul(teacherProbs, logProbs), -1);
}
