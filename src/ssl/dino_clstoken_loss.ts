// DINOv2 CLS-token loss (dinov2/loss/dino_clstoken_loss.py DINOLoss).
//
//   const dino = new DINOClsTokenLoss(K);                         // studentTemp 0.1, centerMomentum 0.9
//   // teacher side (no gradient), once per step, with t = teacher head output of [crop2; crop1] CLS tokens [2B, K]:
//   const probs = dino.softmaxCenterTeacher(t, temp);             // applies the pending center update first
//   dino.updateCenter(t);                                         // pending; applied at the next softmaxCenterTeacher
//   //   or, with train.centering = sinkhorn_knopp (no center involved):
//   const probs = dino.sinkhornKnoppTeacher(t, temp);             // [2B, K]
//   // student side (differentiable):
//   const [p0, p1] = tf.split(probs, 2, 0);
//   const local = dino.forward(tf.split(studentLocal, nLocal, 0), [p0, p1]);   // sum over 2*nLocal pairs
//   const global = dino.forward([studentGlobal], [probs]);                     // one pair over 2B rows
//   // SSLMetaArch then uses local / (2 + 2*nLocal) and 2 * global / (2 + 2*nLocal).
//
// forward(studentList, teacherList) = sum over all (s, t) pairs of -mean_rows(sum_k t * log_softmax(s / studentTemp)):
// a raw sum, not divided by the number of pairs. Teacher probabilities are constants (computed outside the gradient).
// State: center [1, K]; stateDict()/loadStateDict() with key 'center' (a pending update is folded in before saving).
import { tf, type Tensor } from '../backend/tf.js';
import { CenteredLoss, TeacherCenter } from './center.js';
import { rowDot, studentLogSoftmax } from './cross_entropy.js';
import { sinkhornKnopp } from './sinkhorn_knopp.js';

type Scalar = tf.Scalar;

export class DINOClsTokenLoss extends CenteredLoss {
  constructor(
    readonly outDim: number,
    readonly studentTemp = 0.1,
    centerMomentum = 0.9,
  ) {
    super(new TeacherCenter([1, outDim], centerMomentum, 'DINOClsTokenLoss'));
  }

  /** softmax((teacherOutput - center) / temp) over K, after applying any pending center update. [n, K] -> [n, K]. */
  softmaxCenterTeacher(teacherOutput: Tensor, teacherTemp: number): Tensor {
    this.checkK(teacherOutput, 'teacherOutput');
    return this.center.softmaxCentered(teacherOutput, teacherTemp);
  }

  /** Sinkhorn-Knopp assignments (3 iterations) over the n rows of teacherOutput [n, K]. */
  sinkhornKnoppTeacher(teacherOutput: Tensor, teacherTemp: number, nIterations = 3): Tensor {
    this.checkK(teacherOutput, 'teacherOutput');
    return sinkhornKnopp(teacherOutput, teacherTemp, nIterations);
  }

  /** Records mean(teacherOutput rows) [n, K] as the pending center update (official update_center). */
  updateCenter(teacherOutput: Tensor): void {
    this.checkK(teacherOutput, 'teacherOutput');
    this.center.setPendingRowMean(teacherOutput);
  }

  applyCenterUpdate(): void {
    this.center.apply();
  }

  /** Sum over every (student, teacher) pair of the mean-over-rows cross-entropy. Each pair must have equal shapes. */
  forward(studentList: Tensor[], teacherList: Tensor[]): Scalar {
    if (studentList.length === 0 || teacherList.length === 0) throw new Error('DINOClsTokenLoss.forward: empty student or teacher list');
    return tf.tidy(() => {
      let total: Tensor = tf.scalar(0);
      for (const s of studentList) {
        const lsm = studentLogSoftmax(s, this.studentTemp);
        for (const t of teacherList) total = tf.sub(total, tf.mean(rowDot(t, lsm)));
      }
      return total as Scalar;
    });
  }

  private checkK(t: Tensor, what: string): void {
    if (t.rank !== 2 || t.shape[1] !== this.outDim) {
      throw new Error(`DINOClsTokenLoss: ${what} must be [n, ${this.outDim}], got [${t.shape}]`);
    }
  }
}
