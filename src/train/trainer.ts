// One training iteration, for every recipe (main_dino.train_one_epoch, SSLMetaArch.forward_backward + train.py):
//   1. teacher targets (no gradient): teacher backbone on the unmasked global crops [g1; g2]; CLS tokens reordered
//      [g2; g1] → DINO head; with iBOT, the patch tokens at the masked positions → iBOT head (the DINO head when shared);
//      targets by centering (apply the pending center update, softmax, record the next one) or Sinkhorn-Knopp
//   2. student forward: backbone on the (masked) global crops and the unmasked local crops → heads
//   3. the weighted loss terms, summed:
//        DINO local  = Σ over (local crop, teacher crop) pairs / n_terms
//        DINO global = [g1; g2] vs [g2; g1] as one term · 2 / n_terms      (n_terms = 2 + 2·n_local: the crop pairs)
//        KoLeo       = koleo weight · Σ over the 2 global crops of koleo(student backbone CLS of that crop)
//        iBOT        = forward_masked(student masked patches, teacher masked patches) · 2 · 1/2
//      DINO v1's loss is exactly the two DINO terms (same pairs, same divisor); DINOv2 adds KoLeo and iBOT.
//   4. gradient policy: clip each parameter (v1) or each module's global norm (v2); the last layer frozen by dropping its
//      gradients (v1) or by its lr schedule (v2)
//   5. AdamW over the recipe's parameter groups (v1 get_params_groups, or v2 layer-wise decay)
//   6. EMA of the student into the teacher; when distilling, the teacher is frozen and an EMA copy of the student
//      follows it instead
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { variableGrads } from '../backend/grads.js';
import { subStateDict, prefixStateDict } from '../checkpoint/prefix.js';
import type { StateDict } from '../checkpoint/types.js';
import { split } from '../nn/functional.js';
import { gatherRows } from '../nn/gather_rows.js';
import type { CollatedMasks } from '../ssl/collate.js';
import { DINOClsTokenLoss } from '../ssl/dino_clstoken_loss.js';
import { IBOTPatchLoss } from '../ssl/ibot_patch_loss.js';
import { koleoLoss } from '../ssl/koleo_loss.js';
import { cancelLastLayerGradients, clipGlobalNorm, clipPerParam } from './clip.js';
import type { SSLConfig } from './config.js';
import { checkSameParameters, emaUpdate } from './ema.js';
import { targetStatsTensor } from './monitors.js';
import { AdamW, dinoParamGroups } from './optim.js';
import { dinov2ParamGroups } from './param_groups.js';
import { namedParameters, networkModules, type SSLNetwork } from './networks.js';
import type { StepSchedules } from './plan.js';

/** The recipe's choices the step makes (from the config, see trainerPolicies). */
export interface TrainerPolicies {
  centering: 'centering' | 'sinkhorn_knopp';
  dinoLossWeight: number;
  koleoLossWeight: number;
  ibotLossWeight: number;
  /** DINOv2 counts at least one local term (max(2·n_local, 1)); v1 divides by the crop pairs. They differ only without local crops. */
  atLeastOneLocalTerm: boolean;
  /** 0 = no clipping. */
  clipGrad: number;
  clipGradBy: 'parameter' | 'module';
  freezeLastLayerBy: 'gradients' | 'lr_schedule';
  paramGroups: 'dino' | 'dinov2';
  layerwiseDecay: number;
  patchEmbedLrMult: number;
  betas: [number, number];
  studentTemp?: number;
  centerMomentum?: number;
}

export function trainerPolicies(cfg: SSLConfig): TrainerPolicies {
  const o = cfg.optim;
  return {
    centering: cfg.train.centering, dinoLossWeight: cfg.dino.loss_weight, koleoLossWeight: cfg.dino.koleo_loss_weight, ibotLossWeight: cfg.ibot.loss_weight,
    atLeastOneLocalTerm: cfg.recipe === 'dinov2', clipGrad: o.clip_grad, clipGradBy: o.clip_grad_by, freezeLastLayerBy: o.freeze_last_layer_by,
    paramGroups: o.param_groups, layerwiseDecay: o.layerwise_decay, patchEmbedLrMult: o.patch_embed_lr_mult, betas: [o.adamw_beta1, o.adamw_beta2],
  };
}

export interface TrainerOptions {
  student: SSLNetwork;
  teacher: SSLNetwork;
  /** Distillation: the teacher stays frozen and this EMA copy of the student follows it instead. */
  ema?: SSLNetwork;
  schedules: StepSchedules;
  policies: TrainerPolicies;
}

export interface SSLBatch {
  /** Teacher input: the 2 global crops, crop-major [2B, 3, G, G] ([g1 images; g2 images]). */
  global: Tensor;
  /** Student global input when it differs from the teacher's (distillation across patch sizes); default `global`. */
  studentGlobal?: Tensor;
  /** The local crops, crop-major [n_local·B, 3, S, S], or null. */
  local: Tensor | null;
  nLocal: number;
  /** Masks over the student's global-crop patch grid (collateMasks over 2B images); null: no masks, no iBOT term. */
  masks: CollatedMasks | null;
  /** false: the student sees unmasked global crops (the masks only select the patches of the iBOT loss). */
  maskStudentInput?: boolean;
}

/** One metrics.jsonl line's numbers (the run adds it, timings and the time). */
export interface StepResult {
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
  grad_norm_backbone?: number;
  grad_norm_dino_head?: number;
  grad_norm_ibot_head?: number;
}

/** Tensors a check needs from one step (owned by the callee: clone what you keep). */
export interface StepCapture {
  /** The gradients as applied (after clipping and the last-layer policy). */
  grads: Map<string, Tensor>;
  /** Student head outputs of the CLS tokens, crop-major [g1; g2; l1; ...] (v1 MultiCropWrapper order). */
  studentOutput: Tensor;
  /** Teacher DINO-head outputs of [g1; g2], before centering. */
  teacherOutput: Tensor;
}

/** Steps 1–3 of one replica (SSLTrainer.computeGradients): what data-parallel replicas average. */
export interface LocalGradients {
  loss: number;
  /** DINO local, DINO global, KoLeo / 2, iBOT / 2 (the official loss_dict's values). */
  terms: number[];
  /** Teacher target entropy and KL to uniform (monitors.ts). */
  targetStats: number[];
  maskedPatches: number;
  /** By student parameter name. */
  grads: Map<string, Tensor>;
  /** Kept when asked (keepOutputs), for StepCapture. */
  studentOutput: Tensor | null;
  teacherOutput: Tensor | null;
}

export class NonFiniteLossError extends Error {
  constructor(readonly loss: number, readonly iteration: number) {
    super(`loss is ${loss} at iteration ${iteration}: stopping training (the last good checkpoint is kept). ` +
      'Lower --lr, keep --clip_grad on, or lower --teacher_temp.');
  }
}

export class SSLTrainer {
  readonly studentParams: Map<string, Variable>;
  readonly teacherParams: Map<string, Variable>;
  readonly emaParams: Map<string, Variable> | null;
  readonly optimizer: AdamW;
  readonly dinoLoss: DINOClsTokenLoss;
  readonly ibotLoss: IBOTPatchLoss;
  private readonly trainable: Variable[];
  private readonly nameOfVar = new Map<string, string>();
  private readonly lastLayerNames: Set<string>;

  /** New schedules from the next step on (a time-planned run re-planned while running). */
  setSchedules(schedules: StepSchedules): void {
    this.opts.schedules = schedules;
  }

  constructor(readonly opts: TrainerOptions) {
    const { student, teacher, ema, policies: p } = opts;
    this.studentParams = namedParameters(student);
    this.teacherParams = namedParameters(teacher);
    this.emaParams = ema ? namedParameters(ema) : null;
    checkSameParameters(this.studentParams, this.emaParams ?? this.teacherParams);
    const groups = p.paramGroups === 'dino'
      ? dinoParamGroups(this.studentParams)
      : dinov2ParamGroups(
        networkModules(student).map(([prefix, m]) => ({ prefix, params: new Map(m.namedParameters()), depth: prefix === 'backbone' ? student.backbone.config.depth : null })),
        { layerwiseDecay: p.layerwiseDecay, patchEmbedLrMult: p.patchEmbedLrMult },
      );
    this.optimizer = new AdamW(this.studentParams, groups, { betas: p.betas });
    this.lastLayerNames = new Set([...this.studentParams.keys()].filter((n) => n.includes('last_layer')));
    this.trainable = [...this.studentParams.values()].filter((v) => v.trainable);
    for (const [name, v] of this.studentParams) this.nameOfVar.set(v.name, name);
    for (const v of this.teacherParams.values()) v.trainable = false;
    if (this.emaParams) for (const v of this.emaParams.values()) v.trainable = false;
    this.dinoLoss = new DINOClsTokenLoss(student.dino_head.lastLayer.weightV.shape[0]!, p.studentTemp, p.centerMomentum);
    this.ibotLoss = new IBOTPatchLoss((student.ibot_head ?? student.dino_head).lastLayer.weightV.shape[0]!);
    for (const [, m] of networkModules(student)) m.train(true);
    for (const [, m] of networkModules(teacher)) m.eval();
    // An EMA teacher's BatchNorm heads use batch statistics, as main_dino.py's teacher (never switched to eval): EMA
    // carries parameters, not running statistics. A distillation teacher is frozen and trained: its running ones.
    // (The teacher backbone has no drop path, so its mode changes nothing.)
    if (!ema) for (const h of [teacher.dino_head, teacher.ibot_head]) if (h?.hasBatchNorm) h.train(true);
    if (ema) for (const [, m] of networkModules(ema)) m.eval();
  }

  /** The network whose weights are the result: the teacher (EMA of the student), or the student's EMA when distilling. */
  get resultNetwork(): SSLNetwork {
    return this.opts.ema ?? this.opts.teacher;
  }

  /** teacher ← student (official load_state_dict / prepare_for_distributed_training), or ema ← student when distilling. */
  syncEmaFromStudent(): void {
    for (const [name, t] of this.emaParams ?? this.teacherParams) t.assign(this.studentParams.get(name)!);
  }

  /** Both centers (DINO CLS and iBOT patch), pending updates folded in. */
  lossState(): StateDict {
    return new Map([...prefixStateDict('dino_loss.', this.dinoLoss.stateDict()), ...prefixStateDict('ibot_patch_loss.', this.ibotLoss.stateDict())]);
  }

  loadLossState(sd: StateDict): void {
    this.dinoLoss.loadStateDict(subStateDict(sd, 'dino_loss.'));
    this.ibotLoss.loadStateDict(subStateDict(sd, 'ibot_patch_loss.'));
  }

  /** One iteration at schedule index `iteration`. Throws NonFiniteLossError, parameters untouched, on a NaN/Inf loss. */
  step(batch: SSLBatch, iteration: number, capture?: (c: StepCapture) => void): StepResult {
    return this.applyGradients(this.computeGradients(batch, this.opts.schedules.teacherTemp.at(iteration), capture !== undefined), iteration, capture);
  }

  /**
   * Steps 1–3 on this replica's batch: teacher targets, student forward, loss and gradients. Records the pending center
   * update(s) from this batch; changes no parameter. A data-parallel run averages the results of its replicas
   * (data_parallel.ts, averageReplicas) before applyGradients.
   */
  computeGradients(batch: SSLBatch, teacherTemp: number, keepOutputs = false): LocalGradients {
    const { policies: p, student, teacher } = this.opts;
    const nGlobalImages = batch.global.shape[0]!;
    if (nGlobalImages % 2) throw new Error(`SSLTrainer.step: global crops must hold 2B images, got ${nGlobalImages}`);
    const B = nGlobalImages / 2;
    const masks = batch.masks;
    if (masks && masks.shape[0] !== nGlobalImages) throw new Error(`SSLTrainer.step: masks cover ${masks.shape[0]} images, the global crops ${nGlobalImages}`);
    const M = masks?.nMaskedPatches ?? 0;
    const doIbot = p.ibotLossWeight > 0 && M > 0;
    const nLocal = batch.local ? batch.nLocal : 0;
    const maskIdx = doIbot ? tf.tensor1d(masks!.maskIndices, 'int32') : null;

    // ---- 1. teacher targets (no gradient) ----
    // Patch tokens only where iBOT needs them: backbone.forward normalises the CLS token alone (the same values as
    // forwardFeatures' CLS token, for a fraction of the work on small models).
    const targets = tf.tidy(() => {
      const tOut = doIbot ? teacher.backbone.forwardFeatures(batch.global) : null;
      const [c1, c2] = tf.split(tOut ? tOut.clsToken : teacher.backbone.forward(batch.global), 2, 0);
      const cls = tf.concat([c2!, c1!], 0); // matched to the student's [g1; g2]: A ↔ B
      let clsOut: Tensor;
      let patchOut: Tensor | null = null;
      if (doIbot) {
        const [, N, D] = tOut!.patchTokens.shape as [number, number, number];
        if (N !== masks!.shape[1]) throw new Error(`the teacher sees ${N} patches per global crop, the masks ${masks!.shape[1]}: the iBOT loss needs matching patch grids`);
        const masked = tf.gather(tOut!.patchTokens.reshape([nGlobalImages * N, D]), maskIdx!);
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
      if (p.centering === 'centering') {
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
      const [o2, o1] = tf.split(clsOut, 2, 0);
      const teacherOutput = keepOutputs ? tf.concat([o1!, o2!], 0) : null;
      return { clsP, patchP, stats: targetStatsTensor(clsP), teacherOutput } as unknown as tf.TensorContainer;
    }) as unknown as { clsP: Tensor; patchP: Tensor | null; stats: Tensor; teacherOutput: Tensor | null };

    // ---- 2. student forward and 3. the loss terms ----
    const parts: Tensor[] = [];
    let studentOutput: Tensor | null = null;
    const studentMasks = masks && batch.maskStudentInput !== false ? tf.tensor2d(Float32Array.from(masks.data), masks.shape) : null;
    const masksWeight = doIbot ? tf.tensor1d(masks!.masksWeight) : null;
    const { value, grads: byVar } = variableGrads(() => {
      const studentGlobal = batch.studentGlobal ?? batch.global;
      const g = doIbot || studentMasks ? student.backbone.forwardFeatures(studentGlobal, studentMasks) : null;
      const globalCls = g ? g.clsToken : student.backbone.forward(studentGlobal);
      const headIn: Tensor[] = [globalCls];
      if (nLocal > 0) headIn.push(student.backbone.forward(batch.local!));
      let maskedPatches: Tensor | null = null;
      if (doIbot) {
        const [, N, D] = g!.patchTokens.shape as [number, number, number];
        maskedPatches = gatherRows(g!.patchTokens.reshape([nGlobalImages * N, D]), maskIdx!);
        if (!student.ibot_head) headIn.push(maskedPatches);
      }
      const out = student.dino_head.forward(headIn.length === 1 ? headIn[0]! : tf.concat(headIn, 0));
      // Split, not sliced: a slice's gradient is a pad, slow on the CPU backends at [rows, K].
      const sharedPatches = doIbot && !student.ibot_head;
      const pieces = split(out, [nGlobalImages, ...(nLocal > 0 ? [nLocal * B] : []), ...(sharedPatches ? [M] : [])], 0);
      const globalOut = pieces[0]!;
      const localOut = nLocal > 0 ? pieces[1]! : null;
      if (keepOutputs) studentOutput = tf.keep(localOut ? tf.concat([globalOut, localOut], 0) : globalOut.clone());
      const nTerms = 2 + (p.atLeastOneLocalTerm ? Math.max(2 * nLocal, 1) : 2 * nLocal);
      const teacherChunks = tf.split(targets.clsP, 2, 0);
      let total: Tensor = tf.scalar(0);
      let localLoss: Tensor = tf.scalar(0);
      if (localOut) {
        localLoss = tf.div(this.dinoLoss.forward(split(localOut, nLocal), teacherChunks), nTerms);
        total = tf.add(total, tf.mul(localLoss, p.dinoLossWeight));
      }
      const globalLoss = tf.div(tf.mul(this.dinoLoss.forward([globalOut], [targets.clsP]), 2), nTerms);
      total = tf.add(total, tf.mul(globalLoss, p.dinoLossWeight));
      let koleo: Tensor = tf.scalar(0);
      if (p.koleoLossWeight > 0) {
        const terms = tf.split(globalCls, 2, 0).map((x) => {
          const r = koleoLoss(x);
          r.nnIndices.dispose();
          return r.loss;
        });
        koleo = tf.mul(tf.add(terms[0]!, terms[1]!), p.koleoLossWeight);
        total = tf.add(total, koleo);
      }
      let ibot: Tensor = tf.scalar(0);
      if (doIbot) {
        const sPatch = student.ibot_head ? student.ibot_head.forward(maskedPatches!) : pieces[pieces.length - 1]!;
        ibot = tf.mul(this.ibotLoss.forwardMasked(sPatch, targets.patchP!, masks!, { masksWeight: masksWeight! }), 2 * 0.5);
        total = tf.add(total, tf.mul(ibot, p.ibotLossWeight));
      }
      // Displayed values as the official loss_dict: koleo / 2 and ibot / 2.
      parts.push(tf.keep(tf.concat([tf.stack([localLoss, globalLoss, tf.div(koleo, 2), tf.div(ibot, 2)]), targets.stats])));
      return total as tf.Scalar;
    }, this.trainable);
    for (const t of [maskIdx, studentMasks, masksWeight, targets.clsP, targets.patchP, targets.stats]) t?.dispose();
    const lossValue = value.dataSync()[0]!;
    value.dispose();
    const [local, global, koleo, ibot, entropy, klUniform] = Array.from(parts[0]!.dataSync());
    parts[0]!.dispose();
    const grads = new Map<string, Tensor>();
    for (const [varName, g] of Object.entries(byVar)) grads.set(this.nameOfVar.get(varName)!, g);
    return {
      loss: lossValue, terms: [local!, global!, koleo!, ibot!], targetStats: [entropy!, klUniform!], maskedPatches: M, grads,
      studentOutput: studentOutput as Tensor | null, teacherOutput: targets.teacherOutput,
    };
  }

  /**
   * Steps 4–6: gradient policy, optimizer and EMA at schedule index `iteration`, from this replica's gradients or the
   * replicas' average. Takes ownership of `g`'s tensors. Throws NonFiniteLossError, parameters untouched, on a NaN/Inf loss.
   */
  applyGradients(g: LocalGradients, iteration: number, capture?: (c: StepCapture) => void): StepResult {
    const { schedules: sch, policies: p, student } = this.opts;
    const lr = sch.lr.at(iteration);
    const wd = sch.wd.at(iteration);
    const momentum = sch.momentum.at(iteration);
    const teacherTemp = sch.teacherTemp.at(iteration);
    let grads = g.grads;
    const lossValue = g.loss;
    if (!Number.isFinite(lossValue)) {
      for (const t of [...grads.values(), g.teacherOutput, g.studentOutput]) t?.dispose();
      for (const l of [this.dinoLoss, this.ibotLoss]) l.center.dropPending(); // the step changes nothing
      throw new NonFiniteLossError(lossValue, iteration);
    }
    const [local, global, koleo, ibot] = g.terms;
    const [entropy, klUniform] = g.targetStats;
    const M = g.maskedPatches;

    // ---- 4. gradient policy: clipping, then the frozen last layer ----
    const norms: Record<string, number> = {};
    if (p.clipGrad > 0) {
      const clipped = p.clipGradBy === 'parameter' ? clipPerParam(grads, p.clipGrad) : this.clipPerModule(grads, p.clipGrad, norms);
      for (const g of grads.values()) g.dispose();
      grads = clipped;
    }
    const lastLayerFrozen = iteration < sch.freezeLastLayerIterations;
    if (p.freezeLastLayerBy === 'gradients') cancelLastLayerGradients(grads, iteration, sch.freezeLastLayerIterations);
    if (capture) capture({ grads, studentOutput: g.studentOutput!, teacherOutput: g.teacherOutput! });
    g.studentOutput?.dispose();
    g.teacherOutput?.dispose();

    // ---- 5. optimizer, 6. EMA ----
    const lastLayerLr = p.freezeLastLayerBy === 'lr_schedule' ? sch.lastLayerLr.at(iteration) : lastLayerFrozen ? 0 : lr;
    const regular = new Map([...grads].filter(([n]) => !this.lastLayerNames.has(n)));
    const lastLayer = new Map([...grads].filter(([n]) => this.lastLayerNames.has(n)));
    this.optimizer.step(regular, lr, wd);
    if (lastLayer.size) this.optimizer.step(lastLayer, lastLayerLr, wd);
    for (const g of grads.values()) g.dispose();
    emaUpdate(this.emaParams ?? this.teacherParams, this.studentParams, momentum);

    const r: StepResult = {
      loss: lossValue, dino_local_crops_loss: local!, dino_global_crops_loss: global!, koleo_loss: koleo!, ibot_loss: ibot!,
      lr, wd, momentum, teacher_temp: teacherTemp, last_layer_lr: lastLayerLr, teacher_entropy: entropy!, kl_uniform: klUniform!, masked_patches: M,
    };
    if (p.clipGradBy === 'module') {
      r.grad_norm_backbone = norms.backbone ?? NaN;
      r.grad_norm_dino_head = norms[student.dinoHeadName] ?? NaN;
      if (norms.ibot_head !== undefined) r.grad_norm_ibot_head = norms.ibot_head;
    }
    return r;
  }

  /** torch clip_grad_norm_ on each student module separately; records each module's norm before clipping. */
  private clipPerModule(grads: Map<string, Tensor>, maxNorm: number, norms: Record<string, number>): Map<string, Tensor> {
    const clipped = new Map<string, Tensor>();
    for (const [mod] of networkModules(this.opts.student)) {
      const part = new Map([...grads].filter(([n]) => n.startsWith(`${mod}.`)));
      if (part.size === 0) continue;
      const r = clipGlobalNorm(part, maxNorm);
      norms[mod] = r.totalNorm.dataSync()[0]!;
      r.totalNorm.dispose();
      for (const [n, g] of r.grads) clipped.set(n, g);
    }
    return clipped;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.dinoLoss.dispose();
    this.ibotLoss.dispose();
  }
}
