// One DINO (v1) training iteration, as main_dino.train_one_epoch does it:
//   teacher(global crops) → student(all crops) → DINOLoss (uses the old center, then updates it) → gradients →
//   per-parameter clipping → drop last-layer gradients during the first `freeze_last_layer` epochs →
//   AdamW with the scheduled lr / wd → teacher EMA with the scheduled momentum.
// Student and teacher parameters are named like the official MultiCropWrapper: `backbone.<name>`, `head.<name>`.
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { variableGrads } from '../backend/grads.js';
import type { Module } from '../nn/module.js';
import type { DINOLoss } from '../ssl/dino_loss.js';
import { cancelLastLayerGradients, clipPerParam } from './clip.js';
import { checkSameParameters, emaUpdate } from './ema.js';
import { multiCropForward, type Backbone, type Head } from './multicrop.js';
import { teacherStatsTensor } from './monitors.js';
import { AdamW, dinoParamGroups } from './optim.js';

export interface DinoNetwork {
  backbone: Module & Backbone;
  head: Module & Head;
}

/** Per-iteration schedules (index = global iteration), as the official cosine_scheduler arrays. */
export interface DinoSchedules {
  lr: Float64Array;
  wd: Float64Array;
  momentum: Float64Array;
}

export interface DinoTrainerOptions {
  student: DinoNetwork;
  teacher: DinoNetwork;
  loss: DINOLoss;
  schedules: DinoSchedules;
  /** Per-parameter clip norm; 0 = no clipping. */
  clipGrad: number;
  freezeLastLayer: number;
}

export interface StepResult {
  loss: number;
  lr: number;
  wd: number;
  momentum: number;
  teacher_entropy: number;
  kl_uniform: number;
}

/** Tensors a conformance check needs from one step (the caller disposes them). */
export interface StepCapture {
  studentOutput: Tensor;
  teacherOutput: Tensor;
  grads: Map<string, Tensor>;
}

export class NonFiniteLossError extends Error {
  constructor(readonly loss: number, readonly iteration: number) {
    super(`loss is ${loss} at iteration ${iteration}: stopping training (the last good checkpoint is kept). ` +
      'Lower --lr, keep --clip_grad on, or lower --teacher_temp.');
  }
}

export function namedNetworkParameters(net: DinoNetwork): Map<string, Variable> {
  return new Map([...net.backbone.namedParameters('backbone.'), ...net.head.namedParameters('head.')]);
}

export class DinoTrainer {
  readonly studentParams: Map<string, Variable>;
  readonly teacherParams: Map<string, Variable>;
  readonly optimizer: AdamW;
  private readonly trainable: Variable[];
  private readonly nameOfVar = new Map<string, string>();

  constructor(readonly opts: DinoTrainerOptions) {
    this.studentParams = namedNetworkParameters(opts.student);
    this.teacherParams = namedNetworkParameters(opts.teacher);
    checkSameParameters(this.studentParams, this.teacherParams);
    this.optimizer = new AdamW(this.studentParams, dinoParamGroups(this.studentParams));
    this.trainable = [...this.studentParams.values()].filter((v) => v.trainable);
    for (const [name, v] of this.studentParams) this.nameOfVar.set(v.name, name);
    for (const v of this.teacherParams.values()) v.trainable = false; // the teacher never gets gradients
    // Both networks run in training mode, as in main_dino.py (the teacher is never switched to eval): the teacher
    // has no drop path, and a BatchNorm head (use_bn_in_head) normalises with batch statistics in both.
    for (const m of [opts.student.backbone, opts.student.head, opts.teacher.backbone, opts.teacher.head]) m.train(true);
  }

  get scheduleLength(): number {
    return this.opts.schedules.lr.length;
  }

  /** Copies every student parameter into the teacher (the official `teacher.load_state_dict(student.state_dict())`). */
  syncTeacherFromStudent(): void {
    for (const [name, t] of this.teacherParams) t.assign(this.studentParams.get(name)!);
  }

  /**
   * One iteration. `crops` are [B, C, H, W] tensors, the 2 global crops first. `iteration` is the global iteration
   * (schedule index), `epoch` the data epoch (teacher temperature, freeze_last_layer). Throws NonFiniteLossError
   * without touching the parameters when the loss is NaN/Inf.
   */
  step(crops: Tensor[], iteration: number, epoch: number, capture?: (c: StepCapture) => void): StepResult {
    const { schedules, loss: dinoLoss, student, teacher } = this.opts;
    const lr = schedules.lr[iteration];
    const wd = schedules.wd[iteration];
    const momentum = schedules.momentum[iteration];
    if (lr === undefined || wd === undefined || momentum === undefined) {
      throw new Error(`iteration ${iteration} is past the end of the schedules (${schedules.lr.length} iterations)`);
    }
    if (crops.length !== dinoLoss.ncrops) throw new Error(`step: got ${crops.length} crops, the loss expects ${dinoLoss.ncrops}`);
    const teacherOutput = tf.tidy(() => multiCropForward(teacher.backbone, teacher.head, crops.slice(0, 2)));
    const stats = teacherStatsTensor(teacherOutput, dinoLoss.center.value, dinoLoss.teacherTemp(epoch));
    let studentOutput: Tensor | null = null;
    const { value, grads: byVar } = variableGrads(() => {
      const out = multiCropForward(student.backbone, student.head, crops);
      if (capture) studentOutput = tf.keep(out.clone());
      return dinoLoss.forward(out, teacherOutput, epoch);
    }, this.trainable);
    const lossValue = value.dataSync()[0]!;
    const [entropy, kl] = stats.dataSync();
    value.dispose();
    stats.dispose();
    let grads = new Map<string, Tensor>();
    for (const [varName, g] of Object.entries(byVar)) grads.set(this.nameOfVar.get(varName)!, g);
    if (!Number.isFinite(lossValue)) {
      for (const g of grads.values()) g.dispose();
      teacherOutput.dispose();
      (studentOutput as Tensor | null)?.dispose();
      throw new NonFiniteLossError(lossValue, iteration);
    }
    if (this.opts.clipGrad > 0) {
      const clipped = clipPerParam(grads, this.opts.clipGrad);
      for (const g of grads.values()) g.dispose();
      grads = clipped;
    }
    cancelLastLayerGradients(grads, epoch, this.opts.freezeLastLayer);
    if (capture) {
      capture({ studentOutput: studentOutput!, teacherOutput: teacherOutput.clone(), grads: new Map([...grads].map(([n, g]) => [n, g.clone()])) });
    }
    this.optimizer.step(grads, lr, wd);
    for (const g of grads.values()) g.dispose();
    teacherOutput.dispose();
    emaUpdate(this.teacherParams, this.studentParams, momentum);
    return { loss: lossValue, lr, wd, momentum, teacher_entropy: entropy!, kl_uniform: kl! };
  }
}
