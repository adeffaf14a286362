// Fixture kind `train_step`: one official DINO v1 training iteration (main_dino.train_one_epoch on one batch).
// Rebuilds the tiny student/teacher from the fixture config and its init checkpoint, runs DinoTrainer.step on the stored
// crops with the fixture's lr / wd / momentum, and emits the loss, head outputs, applied gradients, the student after
// AdamW, the teacher after EMA and the new center.
import type { Tensor } from '../../backend/tf.js';
import { tf } from '../../backend/tf.js';
import { join } from 'node:path';
import { readStateDict } from '../../checkpoint/index.js';
import type { StateDict } from '../../checkpoint/types.js';
import { dinoConfig } from '../../models/config.js';
import { DINOHead } from '../../models/dino_head.js';
import { VisionTransformer } from '../../models/vit.js';
import { DINOLoss } from '../../ssl/dino_loss.js';
import { DinoTrainer, type DinoNetwork, type StepCapture } from '../../train/dino_trainer.js';
import type { FixtureContext } from '../runner.js';
import { f32, type BinTensor } from '../tensor_io.js';

function buildNetwork(cfg: Record<string, any>, dropPath: number): DinoNetwork {
  const v = cfg.vit;
  const h = cfg.head;
  const backbone = new VisionTransformer(
    dinoConfig('tiny', v.patch_size, { imgSize: v.img_size, embedDim: v.embed_dim, depth: v.depth, numHeads: v.num_heads, mlpRatio: v.mlp_ratio, dropPathRate: dropPath }),
  );
  const head = new DINOHead({
    inDim: h.in_dim, outDim: h.out_dim, hiddenDim: h.hidden_dim, bottleneckDim: h.bottleneck_dim, nlayers: h.nlayers, useBn: h.use_bn,
    normLastLayer: h.norm_last_layer,
  });
  return { backbone, head };
}

function loadInto(net: DinoNetwork, sd: StateDict): void {
  const part = (prefix: string) => new Map([...sd].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  net.backbone.loadStateDict(part('backbone.'));
  net.head.loadStateDict(part('head.'));
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
  loadInto(student, init);
  const ncrops = 2 + cfg.local_crops_number;
  const loss = new DINOLoss({
    outDim: cfg.head.out_dim, ncrops, warmupTeacherTemp: cfg.warmup_teacher_temp, teacherTemp: cfg.teacher_temp,
    warmupTeacherTempEpochs: cfg.warmup_teacher_temp_epochs, nepochs: cfg.nepochs, studentTemp: cfg.student_temp, centerMomentum: cfg.center_momentum,
  });
  const trainer = new DinoTrainer({
    student, teacher, loss,
    schedules: { lr: Float64Array.of(cfg.lr), wd: Float64Array.of(cfg.weight_decay), momentum: Float64Array.of(cfg.momentum_teacher) },
    clipGrad: cfg.clip_grad, freezeLastLayer: cfg.freeze_last_layer,
  });
  trainer.syncTeacherFromStudent();

  const names = cropNames(ctx);
  if (names.length !== ncrops) throw new Error(`fixture ${ctx.name}: found ${names.length} crops, config implies ${ncrops}`);
  const crops = names.map((n) => {
    const t = ctx.input(n);
    return tf.tensor(t.data as Float32Array, t.shape, 'float32');
  });
  let cap: StepCapture | null = null;
  const r = trainer.step(crops, 0, cfg.epoch, (c) => (cap = c));
  const c = cap as StepCapture | null;
  if (!c) throw new Error('train step produced no capture');

  ctx.emit('loss', f32([], [r.loss]));
  ctx.emit('student_output', bin(c.studentOutput));
  ctx.emit('teacher_output', bin(c.teacherOutput));
  for (const [name, g] of c.grads) ctx.emit(`grad/${name}`, bin(g));
  for (const [name, p] of trainer.studentParams) ctx.emit(`student/${name}`, bin(p));
  for (const [name, p] of trainer.teacherParams) ctx.emit(`teacher/${name}`, bin(p));
  ctx.emit('center', bin(loss.center.value));

  for (const t of [...crops, c.studentOutput, c.teacherOutput, ...c.grads.values()]) t.dispose();
  trainer.optimizer.dispose();
  loss.dispose();
  for (const n of [student, teacher]) {
    n.backbone.dispose();
    n.head.dispose();
  }
}
