// DINO v1 loss (main_dino.py DINOLoss): cross-entropy between the sharpened, centered teacher distribution of each
// global crop and the student distribution of every *other* crop, averaged over the 2*ncrops-2 (crop pairs).
//
//   const loss = new DINOLoss({ outDim: K, ncrops: 2 + L, warmupTeacherTemp: 0.04, teacherTemp: 0.07,
//                               warmupTeacherTempEpochs: 30, nepochs: 100 });
//   const l = loss.forward(studentOutput, teacherOutput, epoch);   // scalar
//
// Inputs:  studentOutput [ncrops*B, K], crop-major ([g1 images; g2 images; l1 images; ...], as MultiCropWrapper emits).
//          teacherOutput [2*B, K], the two global crops, crop-major. It is treated as constant (no gradient is taken
//          through it as long as it does not depend on the trained variables: run the teacher outside the gradient).
// Teacher: softmax((t - center) / teacherTempSchedule[epoch]); student: log_softmax(s / studentTemp).
// State:   center [1, K] (non-trainable tf.Variable). forward() updates it AFTER computing the loss, with the mean of
//          teacherOutput (EMA momentum centerMomentum), so each call uses the previous center.
//          stateDict() / loadStateDict() save and restore it under the official key 'center'.
import { tf, type Tensor } from '../backend/tf.js';
import { CenteredLoss, TeacherCenter } from './center.js';
import { rowDot, studentLogSoftmax } from './cross_entropy.js';
import { teacherTempScheduleV1 } from './schedules.js';

type Scalar = tf.Scalar;

export interface DINOLossOptions {
  outDim: number;
  /** Total number of crops: 2 global + the local ones. */
  ncrops: number;
  warmupTeacherTemp: number;
  teacherTemp: number;
  warmupTeacherTempEpochs: number;
  nepochs: number;
  studentTemp?: number;
  centerMomentum?: number;
}

export class DINOLoss extends CenteredLoss {
  readonly outDim: number;
  readonly ncrops: number;
  readonly studentTemp: number;
  /** Teacher temperature per epoch (float64). */
  readonly teacherTempSchedule: Float64Array;

  constructor(opts: DINOLossOptions) {
    super(new TeacherCenter([1, opts.outDim], opts.centerMomentum ?? 0.9, 'DINOLoss'));
    if (!(opts.ncrops >= 2)) throw new Error(`DINOLoss: ncrops must be >= 2 (2 global crops + locals), got ${opts.ncrops}`);
    this.outDim = opts.outDim;
    this.ncrops = opts.ncrops;
    this.studentTemp = opts.studentTemp ?? 0.1;
    this.teacherTempSchedule = teacherTempScheduleV1(opts.warmupTeacherTemp, opts.teacherTemp, opts.warmupTeacherTempEpochs, opts.nepochs);
  }

  teacherTemp(epoch: number): number {
    const t = this.teacherTempSchedule[epoch];
    if (t === undefined) throw new Error(`DINOLoss: epoch ${epoch} is outside the teacher temperature schedule (nepochs ${this.teacherTempSchedule.length})`);
    return t;
  }

  /** The loss (scalar) for one step; then updates the center with teacherOutput's mean. */
  forward(studentOutput: Tensor, teacherOutput: Tensor, epoch: number): Scalar {
    const K = this.outDim;
    if (studentOutput.rank !== 2 || studentOutput.shape[1] !== K || studentOutput.shape[0]! % this.ncrops !== 0) {
      throw new Error(`DINOLoss: studentOutput must be [ncrops*B, ${K}] with ncrops=${this.ncrops}, got [${studentOutput.shape}]`);
    }
    const B = studentOutput.shape[0]! / this.ncrops;
    if (teacherOutput.rank !== 2 || teacherOutput.shape[0] !== 2 * B || teacherOutput.shape[1] !== K) {
      throw new Error(`DINOLoss: teacherOutput must be [2*B, ${K}] = [${2 * B}, ${K}] (2 global crops), got [${teacherOutput.shape}]`);
    }
    const temp = this.teacherTemp(epoch);
    const loss = tf.tidy(() => {
      const studentLsm = tf.split(studentLogSoftmax(studentOutput, this.studentTemp), this.ncrops, 0);
      const teacherProbs = tf.split(this.center.softmaxCentered(teacherOutput, temp), 2, 0);
      let total: Tensor = tf.scalar(0);
      let nTerms = 0;
      for (let iq = 0; iq < 2; iq++) {
        for (let v = 0; v < this.ncrops; v++) {
          if (v === iq) continue; // never compare a view with itself
          total = tf.add(total, tf.mean(tf.neg(rowDot(teacherProbs[iq]!, studentLsm[v]!))));
          nTerms++;
        }
      }
      return tf.div(total, nTerms) as Scalar;
    });
    this.updateCenter(teacherOutput);
    return loss;
  }

  /** center <- m*center + (1-m)*mean(teacherOutput rows). */
  updateCenter(teacherOutput: Tensor): void {
    this.center.setPendingRowMean(teacherOutput);
    this.center.apply();
  }
}
