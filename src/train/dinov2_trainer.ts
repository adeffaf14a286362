// One DINOv2 iteration, as SSLMetaArch.forward_backward + the train.py loop body do it:
//   teacher (eval, no grad) on the unmasked global crops [g1; g2]:
//     CLS tokens reordered [g2; g1] → dino_head;  patch tokens at the masked positions → ibot head (dino_head when
//     shared); targets by centering (apply the pending center update, softmax, record the next update) or Sinkhorn-Knopp
//   student (train) on the masked global crops and the (never masked) local crops:
//     DINO local  = Σ over (local chunk, teacher crop) pairs / (2 + 2·n_local)
//     DINO global = [g1; g2] vs [g2; g1] as one term · 2 / (2 + 2·n_local)
//     KoLeo       = koleo_loss_weight · Σ over the 2 global crops of koleo(student backbone CLS of that crop)
//     iBOT        = forward_masked(student masked patches, teacher masked patches) · 2 · 1/2
//     total       = dino.loss_weight · (local + global) + KoLeo + ibot.loss_weight · iBOT
//   gradients → clip_grad_norm_(clip_grad) on each student module separately (backbone, dino_head, ibot_head) →
//   AdamW with per-group lr·lr_mult (last layer: the last-layer lr schedule, 0 during the first epoch) and wd·wd_mult
//   → EMA of every student module into the teacher with the scheduled momentum.
// Distillation uses the same step with a frozen teacher: no EMA into it, an `ema` copy of the student instead, and
// optionally an unmasked student input with the iBOT loss over every patch (batch.maskStudentInput = false).
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { variableGrads } from '../backend/grads.js';
import { DINOClsTokenLoss } from '../ssl/dino_clstoken_loss.js';
import { IBOTPatchLoss } from '../ssl/ibot_patch_loss.js';
import { koleoLoss } from '../ssl/koleo_loss.js';
import type { CollatedMasks } from '../ssl/collate.js';
import type { Schedulers } from '../ssl/schedules.js';
import type { StateDict } from '../checkpoint/types.js';
import { clipGlobalNorm } from './clip.js';
import { gatherRows } from '../nn/gather_rows.js';
import { NonFiniteLossError } from './dino_trainer.js';
import { checkSameParameters, emaUpdate } from './ema.js';
import { AdamW } from './optim.js';
import { dinov2ParamGroups, type V2ParamGroup } from './param_groups.js';
import { v2Modules, v2NamedParameters, type V2Network } from './dinov2_networks.js';

export interface V2LossSettings {
  dinoLossWeight: number;
  koleoLossWeight: number;
  ibotLossWeight: number;
  centering: 'centering' | 'sinkhorn_knopp';
  /** Max global gradient norm per module; 0 = no clipping. */
  clipGrad: number;
  layerwiseDecay: number;
  patchEmbedLrMult: number;
  betas: [number, number];
}

export interface V2TrainerOptions {
  student: V2Network;
  teacher: V2Network;
  /** Distillation: the teacher stays frozen and this EMA copy of the student follows it instead. */
  ema?: V2Network;
  schedules: Schedulers;
  settings: V2LossSettings;
}

export interface V2Batch {
  /** Teacher input: the 2 global crops, crop-major [2B, 3, G, G] ([g1 images; g2 images]). */
  global: Tensor;
  /** Student global input when it differs from the teacher's (distillation across patch sizes); default `global`. */
  studentGlobal?: Tensor;
  /** The local crops, crop-major [n_local·B, 3, S, S], or null. */
  local: Tensor | null;
  nLocal: number;
  /** Masks over the student's global-crop patch grid (collateMasks over 2B images). */
  masks: CollatedMasks;
  /** false: the student sees unmasked global crops (the masks only select the patches of the iBOT loss). */
  maskStudentInput?: boolean;
}

export interface V2StepResult {
  loss: number;
  dino_local_crops_loss: number;
  dino_global_crops_loss: number;
  koleo_loss: number;
  ibot_loss: number;
  lr: number;
  wd: number;
  momentum: number;
  teacher_temp: number;
  last_layer_lr: number;
  teacher_entropy: number;
  kl_uniform: number;
  masked_patches: number;
  grad_norm_backbone: number;
  grad_norm_dino_head: number;
  grad_norm_ibot_head?: number;
}

export interface V2StepCapture {
  grads: Map<string, Tensor>;
}

export class Dinov2Trainer {
  readonly studentParams: Map<string, Variable>;
  readonly teacherParams: Map<string, Variable>;
  readonly emaParams: Map<string, Variable> | null;
  readonly groups: V2ParamGroup[];
  readonly optimizer: AdamW;
  readonly dinoLoss: DINOClsTokenLoss;
  readonly ibotLoss: IBOTPatchLoss;
  private readonly trainable: Variable[];
  private readonly nameOfVar = new Map<string, string>();
  private readonly lastLayerNames: Set<string>;

  constructor(readonly opts: V2TrainerOptions) {
    const { student, teacher, ema, settings } = opts;
    this.studentParams = v2NamedParameters(student);
    this.teacherParams = v2NamedParameters(teacher);
    this.emaParams = ema ? v2NamedParameters(ema) : null;
    if (this.emaParams) checkSameParameters(this.studentParams, this.emaParams);
    else checkSameParameters(this.studentParams, this.teacherParams);
    this.groups = dinov2ParamGroups(
      v2Modules(student).map(([prefix, m]) => ({ prefix, params: new Map(m.namedParameters()), depth: prefix === 'backbone' ? student.backbone.config.depth : null })),
      { layerwiseDecay: settings.layerwiseDecay, patchEmbedLrMult: settings.patchEmbedLrMult },
    );
    this.optimizer = new AdamW(this.studentParams, this.groups, { betas: settings.betas });
    this.lastLayerNames = new Set(this.groups.filter((g) => g.isLastLayer).flatMap((g) => g.params));
    this.trainable = [...this.studentParams.values()].filter((v) => v.trainable);
    for (const [name, v] of this.studentParams) this.nameOfVar.set(v.name, name);
    for (const v of this.teacherParams.values()) v.trainable = false;
    if (this.emaParams) for (const v of this.emaParams.values()) v.trainable = false;
    this.dinoLoss = new DINOClsTokenLoss(student.dino_head.lastLayer.weightV.shape[0]!);
    this.ibotLoss = new IBOTPatchLoss((student.ibot_head ?? student.dino_head).lastLayer.weightV.shape[0]!);
    for (const [, m] of v2Modules(student)) m.train(true);
    for (const [, m] of v2Modules(teacher)) m.eval();
    // An EMA teacher's BatchNorm heads use batch statistics, as main_dino.py's teacher (never switched to eval): EMA
    // carries parameters, not running statistics. A distillation teacher is frozen and trained: its running ones.
    if (!ema) for (const h of [teacher.dino_head, teacher.ibot_head]) if (h?.hasBatchNorm) h.train(true);
    if (ema) for (const [, m] of v2Modules(ema)) m.eval();
  }

  /** The network whose weights are the result: the teacher (EMA of the student), or the student's EMA when distilling. */
  get resultNetwork(): V2Network {
    return this.opts.ema ?? this.opts.teacher;
  }

  /** teacher ← student (official prepare_for_distributed_training), or ema ← student when distilling. */
  syncEmaFromStudent(): void {
    const target = this.emaParams ?? this.teacherParams;
    for (const [name, t] of target) t.assign(this.studentParams.get(name)!);
  }

  /** Both centers (DINO CLS and iBOT patch), pending updates folded in. */
  lossState(): StateDict {
    const sd: StateDict = new Map();
    for (const [k, t] of this.dinoLoss.stateDict()) sd.set(`dino_loss.${k}`, t);
    for (const [k, t] of this.ibotLoss.stateDict()) sd.set(`ibot_patch_loss.${k}`, t);
    return sd;
  }

  loadLossState(sd: StateDict): void {
    const part = (p: string) => new Map([...sd].filter(([k]) => k.startsWith(p)).map(([k, t]) => [k.slice(p.length), t]));
    this.dinoLoss.loadStateDict(part('dino_loss.'));
    this.ibotLoss.loadStateDict(part('ibot_patch_loss.'));
  }

  step(batch: V2Batch, iteration: number, capture?: (c: V2StepCapture) => void): V2StepResult {
    const { schedules: sch, settings: s, student, teacher } = this.opts;
    const lr = sch.lr.at(iteration);
    const wd = sch.wd.at(iteration);
    const momentum = sch.momentum.at(iteration);
    const teacherTemp = sch.teacherTemp.at(iteration);
    const lastLayerLr = sch.lastLayerLr.at(iteration);
    const nGlobalImages = batch.global.shape[0]!;
    if (nGlobalImages % 2) throw new Error(`Dinov2Trainer.step: global crops must hold 2B images, got ${nGlobalImages}`);
    const B = nGlobalImages / 2;
    const masks = batch.masks;
    if (masks.shape[0] !== nGlobalImages) throw new Error(`Dinov2Trainer.step: masks cover ${masks.shape[0]} images, the global crops ${nGlobalImages}`);
    const M = masks.nMaskedPatches;
    const doIbot = s.ibotLossWeight > 0 && M > 0;
    const nLocal = batch.local ? batch.nLocal : 0;
    const studentGlobal = batch.studentGlobal ?? batch.global;
    const maskIdx = tf.tensor1d(masks.maskIndices, 'int32');

    // ---- teacher targets (no gradient) ----
    const targets = tf.tidy(() => {
      const tOut = teacher.backbone.forwardFeatures(batch.global);
      const [c1, c2] = tf.split(tOut.clsToken, 2, 0);
      const cls = tf.concat([c2!, c1!], 0); // matched to the student's [g1; g2]: A ↔ B
      let clsOut: Tensor;
      let patchOut: Tensor | null = null;
      if (doIbot) {
        const [, N, D] = tOut.patchTokens.shape as [number, number, number];
        if (N !== masks.shape[1]) {
          throw new Error(`the teacher sees ${N} patches per global crop, the masks ${masks.shape[1]}: the iBOT loss needs matching patch grids`);
        }
        const masked = tf.gather(tOut.patchTokens.reshape([nGlobalImages * N, D]), maskIdx);
        if (teacher.ibot_head) {
          clsOut = teacher.dino_head.forward(cls);
          patchOut = teacher.ibot_head.forward(masked);
        } else {
          const both = teacher.dino_head.forward(tf.concat([cls, masked], 0));
          clsOut = both.slice([0, 0], [nGlobalImages, -1]);
          patchOut = both.slice([nGlobalImages, 0], [M, -1]);
        }
      } else clsOut = teacher.dino_head.forward(cls);
      let clsP: Tensor;
      let patchP: Tensor | null = null;
      if (s.centering === 'centering') {
        clsP = this.dinoLoss.softmaxCenterTeacher(clsOut, teacherTemp);
        this.dinoLoss.updateCenter(clsOut);
        if (patchOut) {
          patchP = this.ibotLoss.softmaxCenterTeacher(patchOut, teacherTemp);
          this.ibotLoss.updateCenter(patchOut);
        }
      } else {
        clsP = this.dinoLoss.sinkhornKnoppTeacher(clsOut, teacherTemp);
        if (patchOut) patchP = this.ibotLoss.sinkhornKnoppTeacher(patchOut, teacherTemp, M);
      }
      // Collapse monitors of the CLS targets (as v1's monitors.ts): mean entropy, and KL(mean target ‖ uniform).
      const K = clsP.shape[1]!;
      const pbar = tf.mean(clsP, 0);
      const entropy = tf.stack([
        tf.mean(tf.neg(tf.sum(tf.mul(clsP, tf.log(tf.add(clsP, 1e-30))), -1))),
        tf.sum(tf.mul(pbar, tf.log(tf.add(tf.mul(pbar, K), 1e-30)))),
      ]);
      return { clsP, patchP, entropy } as unknown as tf.TensorContainer;
    }) as unknown as { clsP: Tensor; patchP: Tensor | null; entropy: Tensor };

    // ---- student forward + losses ----
    const parts: Tensor[] = [];
    const studentMasks = batch.maskStudentInput === false ? null : tf.tensor2d(Float32Array.from(masks.data), masks.shape);
    const masksWeight = doIbot ? tf.tensor1d(masks.masksWeight) : null;
    const { value, grads: byVar } = variableGrads(() => {
      const g = student.backbone.forwardFeatures(studentGlobal, studentMasks);
      const globalCls = g.clsToken;
      const headIn: Tensor[] = [];
      if (nLocal > 0) headIn.push(student.backbone.forwardFeatures(batch.local!).clsToken);
      headIn.push(globalCls);
      let maskedPatches: Tensor | null = null;
      if (doIbot) {
        const [, N, D] = g.patchTokens.shape as [number, number, number];
        maskedPatches = gatherRows(g.patchTokens.reshape([nGlobalImages * N, D]), maskIdx);
        if (!student.ibot_head) headIn.push(maskedPatches);
      }
      const out = student.dino_head.forward(headIn.length === 1 ? headIn[0]! : tf.concat(headIn, 0));
      let row = 0;
      const take = (n: number) => {
        const t = out.slice([row, 0], [n, -1]);
        row += n;
        return t;
      };
      const localOut = nLocal > 0 ? take(nLocal * B) : null;
      const globalOut = take(nGlobalImages);
      const nTerms = 2 + Math.max(2 * nLocal, 1);
      const teacherChunks = tf.split(targets.clsP, 2, 0);
      let total: Tensor = tf.scalar(0);
      let localLoss: Tensor = tf.scalar(0);
      if (localOut) {
        localLoss = tf.div(this.dinoLoss.forward(tf.split(localOut, nLocal, 0), teacherChunks), nTerms);
        total = tf.add(total, tf.mul(localLoss, s.dinoLossWeight));
      }
      const globalLoss = tf.div(tf.mul(this.dinoLoss.forward([globalOut], [targets.clsP]), 2), nTerms);
      total = tf.add(total, tf.mul(globalLoss, s.dinoLossWeight));
      let koleo: Tensor = tf.scalar(0);
      if (s.koleoLossWeight > 0) {
        const terms = tf.split(globalCls, 2, 0).map((x) => {
          const r = koleoLoss(x);
          r.nnIndices.dispose();
          return r.loss;
        });
        koleo = tf.mul(tf.add(terms[0]!, terms[1]!), s.koleoLossWeight);
        total = tf.add(total, koleo);
      }
      let ibot: Tensor = tf.scalar(0);
      if (doIbot) {
        const sPatch = student.ibot_head ? student.ibot_head.forward(maskedPatches!) : take(M);
        ibot = tf.mul(this.ibotLoss.forwardMasked(sPatch, targets.patchP!, masks, { masksWeight: masksWeight! }), 2 * 0.5);
        total = tf.add(total, tf.mul(ibot, s.ibotLossWeight));
      }
      // Displayed values as the official loss_dict: koleo / 2 and ibot / 2.
      parts.push(tf.keep(tf.concat([tf.stack([localLoss, globalLoss, tf.div(koleo, 2), tf.div(ibot, 2)]), targets.entropy])));
      return total as tf.Scalar;
    }, this.trainable);
    maskIdx.dispose();
    studentMasks?.dispose();
    masksWeight?.dispose();
    targets.clsP.dispose();
    targets.patchP?.dispose();
    targets.entropy.dispose();
    const lossValue = value.dataSync()[0]!;
    value.dispose();
    const [local, global, koleo, ibot, entropy, klUniform] = Array.from(parts[0]!.dataSync());
    parts[0]!.dispose();
    let grads = new Map<string, Tensor>();
    for (const [varName, g] of Object.entries(byVar)) grads.set(this.nameOfVar.get(varName)!, g);
    if (!Number.isFinite(lossValue)) {
      for (const g of grads.values()) g.dispose();
      throw new NonFiniteLossError(lossValue, iteration);
    }

    // ---- clip per module, optimizer, EMA ----
    const norms: Record<string, number> = {};
    if (s.clipGrad > 0) {
      const clipped = new Map<string, Tensor>();
      for (const [mod] of v2Modules(student)) {
        const part = new Map([...grads].filter(([n]) => n.startsWith(`${mod}.`)));
        if (part.size === 0) continue;
        const r = clipGlobalNorm(part, s.clipGrad);
        norms[mod] = r.totalNorm.dataSync()[0]!;
        r.totalNorm.dispose();
        for (const [n, g] of r.grads) clipped.set(n, g);
      }
      for (const g of grads.values()) g.dispose();
      grads = clipped;
    }
    if (capture) capture({ grads });
    const regular = new Map([...grads].filter(([n]) => !this.lastLayerNames.has(n)));
    const lastLayer = new Map([...grads].filter(([n]) => this.lastLayerNames.has(n)));
    this.optimizer.step(regular, lr, wd);
    if (lastLayer.size) this.optimizer.step(lastLayer, lastLayerLr, wd);
    for (const g of grads.values()) g.dispose();
    if (this.emaParams) emaUpdate(this.emaParams, this.studentParams, momentum);
    else emaUpdate(this.teacherParams, this.studentParams, momentum);

    const r: V2StepResult = {
      loss: lossValue, dino_local_crops_loss: local!, dino_global_crops_loss: global!, koleo_loss: koleo!, ibot_loss: ibot!,
      lr, wd, momentum, teacher_temp: teacherTemp, last_layer_lr: lastLayerLr, teacher_entropy: entropy!, kl_uniform: klUniform!, masked_patches: M,
      grad_norm_backbone: norms.backbone ?? NaN, grad_norm_dino_head: norms.dino_head ?? NaN,
    };
    if (norms.ibot_head !== undefined) r.grad_norm_ibot_head = norms.ibot_head;
    return r;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.dinoLoss.dispose();
    this.ibotLoss.dispose();
  }
}
