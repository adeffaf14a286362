// Fixture kind `train_step`: one official DINO v1 training iteration (main_dino.train_one_epoch on one batch).
// Rebuilds the tiny student/teacher from the fixture config and its init checkpoint, runs SSLTrainer.step with the DINO
// recipe's policies (the DINO loss terms alone, per-parameter clipping, last layer frozen by dropping its gradients, v1
// parameter groups) on the stored crops with the fixture's lr / wd / momentum / teacher temperature of its epoch, and
// emits the loss, head outputs, applied gradients, the student after AdamW, the teacher after EMA and the new center.
import type { Tensor } from '../../backend/tf.js';
import { tf } from '../../backend/tf.js';
import { join } from 'node:path';
import { readStateDict } from '../../checkpoint/index.js';
import { dinoConfig } from '../../models/config.js';
import { DINOHead } from '../../models/dino_head.js';
import { VisionTransformer } from '../../models/vit.js';
import { concatArrays } from '../../util/arrays.js';
import { teacherTempScheduleV1 } from '../../ssl/schedules.js';
import { disposeNetwork, loadNetworkState, type SSLNetwork } from '../../train/networks.js';
import type { Schedule } from '../../train/plan.js';
import { SSLTrainer, type StepCapture } from '../../train/trainer.js';
import type { FixtureContext } from '../runner.js';
import { f32, type BinTensor } from '../tensor_io.js';

function buildNetwork(cfg: Record<string, any>, dropPath: number): SSLNetwork {
  const v = cfg.vit;
  const h = cfg.head;
  const backbone = new VisionTransformer(
    dinoConfig('tiny', v.patch_size, { imgSize: v.img_size, embedDim: v.embed_dim, depth: v.depth, numHeads: v.num_heads, mlpRatio: v.mlp_ratio, dropPathRate: dropPath }),
  );
  const dino_head = new DINOHead({
    inDim: h.in_dim, outDim: h.out_dim, hiddenDim: h.hidden_dim, bottleneckDim: h.bottleneck_dim, nlayers: h.nlayers, useBn: h.use_bn,
    normLastLayer: h.norm_last_layer,
  });
  return { backbone, dino_head, ibot_head: null, dinoHeadName: 'head' };
}

function bin(t: Tensor): BinTensor {
  return f32(t.shape, t.dataSync() as Float32Array);
}

/** Crop tensor names: the fixture's own inputs, or another fixture's (`inputs_from: "<fixture>/inputs/crops/{0..5}"`). */
function cropNames(ctx: FixtureContext): string[] {
  const from = ctx.fixture.inputs_from as string | undefined;
  const m = from?.match(/^(.*)\{(\d+)\.\.(\d+)\}$/);
  if (m) return Array.from({ length: Number(m[3]) - Number(m[2]) + 1 }, (_, i) => `${m[1]}${Number(m[2]) + i}`);
  const names: string[] = [];
  for (let i = 0; ctx.has(`inputs/crops/${i}`); i++) names.push(`inputs/crops/${i}`);
  return names;
}

export async function trainStepHandler(ctx: FixtureContext): Promise<void> {
  const cfg = ctx.fixture.config;
  if (!cfg?.vit || !cfg?.head) throw new Error(`fixture ${ctx.name}: config needs 'vit' and 'head' sections`);
  // The init weights: a local checkpoint listed under `checkpoints`, else the fixture's `init_checkpoint` path.
  const ckKey = Object.keys(ctx.fixture.checkpoints ?? {}).find((k) => ctx.checkpointPath(k) !== null);
  const ckPath = ckKey ? ctx.checkpointPath(ckKey) : ctx.fixture.init_checkpoint ? join(ctx.dir, ctx.fixture.init_checkpoint) : null;
  if (!ckPath) throw new Error(`fixture ${ctx.name}: no init checkpoint (neither 'checkpoints' nor 'init_checkpoint')`);
  const init = await readStateDict(ckPath);

  const student = buildNetwork(cfg, cfg.drop_path_rate ?? 0);
  const teacher = buildNetwork(cfg, 0);
  loadNetworkState(student, init, `fixture ${ctx.name} init checkpoint`);
  const ncrops = 2 + cfg.local_crops_number;
  // One iteration at schedule index 0, in data epoch cfg.epoch: the v1 teacher temperature of that epoch, and the last
  // layer frozen when that epoch is below freeze_last_layer.
  const temp = teacherTempScheduleV1(cfg.warmup_teacher_temp, cfg.teacher_temp, cfg.warmup_teacher_temp_epochs, cfg.nepochs)[cfg.epoch]!;
  const at = (v: number): Schedule => ({ at: () => v });
  const trainer = new SSLTrainer({
    student, teacher,
    schedules: { lr: at(cfg.lr), wd: at(cfg.weight_decay), momentum: at(cfg.momentum_teacher), teacherTemp: at(temp), lastLayerLr: at(cfg.lr), freezeLastLayerIterations: cfg.epoch < cfg.freeze_last_layer ? 1 : 0 },
    policies: {
      centering: 'centering', dinoLossWeight: 1, koleoLossWeight: 0, ibotLossWeight: 0, atLeastOneLocalTerm: false, clipGrad: cfg.clip_grad, clipGradBy: 'parameter',
      freezeLastLayerBy: 'gradients', paramGroups: 'dino', layerwiseDecay: 1, patchEmbedLrMult: 1, betas: [0.9, 0.999], studentTemp: cfg.student_temp, centerMomentum: cfg.center_momentum,
    },
  });
  trainer.syncEmaFromStudent();

  const names = cropNames(ctx);
  if (names.length !== ncrops) throw new Error(`fixture ${ctx.name}: found ${names.length} crops, config implies ${ncrops}`);
  // The crops as one batch: [g1; g2] and [l1; l2; ...] (crop-major, as MultiCropWrapper concatenates them).
  const crop = (n: string) => ctx.input(n);
  const first = crop(names[0]!);
  const B = first.shape[0]!;
  const stack = (ns: string[]) => {
    const ts = ns.map(crop);
    return tf.tensor(concatArrays(Float32Array, ts.map((t) => t.data as Float32Array)), [ns.length * B, ...ts[0]!.shape.slice(1)], 'float32');
  };
  const nLocal = ncrops - 2;
  const batch = { global: stack(names.slice(0, 2)), local: nLocal > 0 ? stack(names.slice(2)) : null, nLocal, masks: null };
  let cap: { studentOutput: Tensor; teacherOutput: Tensor; grads: Map<string, Tensor> } | null = null;
  const r = trainer.step(batch, 0, (c: StepCapture) => {
    cap = { studentOutput: c.studentOutput.clone(), teacherOutput: c.teacherOutput.clone(), grads: new Map([...c.grads].map(([n, g]) => [n, g.clone()])) };
  });
  const c = cap as { studentOutput: Tensor; teacherOutput: Tensor; grads: Map<string, Tensor> } | null;
  if (!c) throw new Error('train step produced no capture');

  ctx.emit('loss', f32([], [r.loss]));
  ctx.emit('student_output', bin(c.studentOutput));
  ctx.emit('teacher_output', bin(c.teacherOutput));
  for (const [name, g] of c.grads) ctx.emit(`grad/${name}`, bin(g));
  for (const [name, p] of trainer.studentParams) ctx.emit(`student/${name}`, bin(p));
  for (const [name, p] of trainer.teacherParams) ctx.emit(`teacher/${name}`, bin(p));
  const center = trainer.dinoLoss.stateDict().get('center')!;
  ctx.emit('center', f32(center.shape, center.data as Float32Array));

  for (const t of [batch.global, batch.local, c.studentOutput, c.teacherOutput, ...c.grads.values()]) t?.dispose();
  trainer.dispose();
  disposeNetwork(student);
  disposeNetwork(teacher);
}
