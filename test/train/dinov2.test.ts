// DINOv2 recipe: parameter-group multipliers (hand-computed), one training step on a tiny model (gradients, frozen
// last layer, EMA, where the masks go), the YAML config layer, and resume equivalence through the run folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/select.js';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { dinov2Config } from '../../src/models/config.js';
import { collateMasks } from '../../src/ssl/collate.js';
import { MaskingGenerator } from '../../src/ssl/masking.js';
import { buildSchedulers } from '../../src/ssl/schedules.js';
import { Rng } from '../../src/util/rng.js';
import { readConfigFile, resolveConfig, type ConfigLayer } from '../../src/train/config_layers.js';
import { buildNetwork, namedParameters, type SSLNetwork } from '../../src/train/networks.js';
import { buildSchedules, planRun } from '../../src/train/plan.js';
import { DISTILL_DEFAULTS } from '../../src/train/presets.js';
import { trainRun, disposeRunNetworks } from '../../src/train/run.js';
import { SSLTrainer, type SSLBatch, type TrainerPolicies } from '../../src/train/trainer.js';
import { dinov2ParamGroups, paramMultipliers, vitLayerId } from '../../src/train/param_groups.js';
import { trainConfigSource } from '../../src/cli/train_options.js';

await initBackend('cpu');

const heads = {
  dino: { head_n_prototypes: 32, head_bottleneck_dim: 8, head_nlayers: 3, head_hidden_dim: 16, head_use_bn: false, head_norm_last_layer: false, loss_weight: 1, koleo_loss_weight: 0.1 },
  ibot: { head_n_prototypes: 32, head_bottleneck_dim: 8, head_nlayers: 3, head_hidden_dim: 16, head_use_bn: false, head_norm_last_layer: false, loss_weight: 1, mask_sample_probability: 0.5, mask_ratio_min_max: [0.1, 0.5] as [number, number], separate_head: false },
};

function tinyNet(dropPath: number, seed = 0, over: Partial<ReturnType<typeof dinov2Config>> = {}, separate = false): SSLNetwork {
  const vit = dinov2Config('small', 1, { imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, initValues: 1e-5, dropPathRate: dropPath, ...over });
  return buildNetwork(vit, { recipe: 'dinov2', dino: heads.dino, ibot: { ...heads.ibot, separate_head: separate } }, seed);
}

const settings: TrainerPolicies = {
  dinoLossWeight: 1, koleoLossWeight: 0.1, ibotLossWeight: 1, centering: 'centering' as const, clipGrad: 3, clipGradBy: 'module',
  freezeLastLayerBy: 'lr_schedule', paramGroups: 'dinov2', atLeastOneLocalTerm: true,
  layerwiseDecay: 0.9, patchEmbedLrMult: 0.2, betas: [0.9, 0.999] as [number, number],
};

/** The planner's schedules of a DINOv2 run planned by epochs (checked against the official build_schedulers below). */
function schedules(epochLen = 2, epochs = 3) {
  const cfg = resolveConfig({ recipe: 'dinov2', layers: [{ train: { OFFICIAL_EPOCH_LENGTH: epochLen }, optim: { epochs, warmup_epochs: 1, freeze_last_layer_epochs: 1 }, teacher: { warmup_teacher_temp_epochs: 1 } }] });
  return buildSchedules(cfg, planRun(cfg, 7, null));
}

test('the planner of a DINOv2 run planned by epochs gives the official build_schedulers values', () => {
  const epochLen = 2;
  const cfg = resolveConfig({ recipe: 'dinov2', layers: [{ train: { OFFICIAL_EPOCH_LENGTH: epochLen }, optim: { epochs: 3, warmup_epochs: 1, freeze_last_layer_epochs: 1 }, teacher: { warmup_teacher_temp_epochs: 1 } }] });
  const ours = schedules(epochLen, 3);
  const official = buildSchedulers({ train: { OFFICIAL_EPOCH_LENGTH: epochLen }, optim: cfg.optim, teacher: cfg.teacher });
  for (let it = 0; it < 8; it++) {
    for (const k of ['lr', 'wd', 'momentum', 'teacherTemp', 'lastLayerLr'] as const) assert.equal(ours[k].at(it), official[k].at(it), `${k} at ${it}`);
  }
});

function batch(B: number, seed: number, nLocal = 2): SSLBatch {
  const rng = new Rng([seed]);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.random() * 2 - 1);
  const gen = new MaskingGenerator({ inputSize: 4, maxNumPatches: 8 });
  return {
    global: tf.tensor(rand(2 * B * 3 * 16 * 16), [2 * B, 3, 16, 16]),
    local: tf.tensor(rand(nLocal * B * 3 * 8 * 8), [nLocal * B, 3, 8, 8]),
    nLocal,
    masks: collateMasks(2 * B, 16, gen, rng),
  };
}

test('param groups: layer ids and lr / wd multipliers match the hand-computed official values', () => {
  const o = { layerwiseDecay: 0.9, patchEmbedLrMult: 0.2 };
  // depth L = 2: lr_mult = 0.9^(3 - layer_id)
  const cases: [string, number | null, number, number, number][] = [
    // name, depth (null = head), layer id, lr_mult, wd_mult
    ['cls_token', 2, 0, 0.729, 1],
    ['pos_embed', 2, 0, 0.729, 1],
    ['mask_token', 2, 0, 0.729, 1],
    ['register_tokens', 2, 0, 0.729, 1],
    ['patch_embed.proj.weight', 2, 0, 0.729 * 0.2, 1],
    ['patch_embed.proj.bias', 2, 0, 0.729 * 0.2, 0],
    ['blocks.0.attn.qkv.weight', 2, 1, 0.81, 1],
    ['blocks.0.norm1.weight', 2, 1, 0.81, 0],
    ['blocks.0.ls1.gamma', 2, 1, 0.81, 0],
    ['blocks.1.mlp.fc1.weight', 2, 2, 0.9, 1],
    ['blocks.1.mlp.fc1.bias', 2, 2, 0.9, 0],
    ['norm.weight', 2, 3, 1, 0],
    ['mlp.0.weight', null, 1, 1, 1],
    ['mlp.4.bias', null, 1, 1, 0],
    ['last_layer.weight_g', null, 1, 1, 1],
  ];
  for (const [name, depth, id, lr, wd] of cases) {
    const m = paramMultipliers(name, depth, o);
    assert.equal(m.layerId, id, `${name} layer id`);
    assert.ok(Math.abs(m.lrMult - lr) < 1e-12, `${name} lr_mult ${m.lrMult} vs ${lr}`);
    assert.equal(m.wdMult, wd, `${name} wd_mult`);
    assert.equal(m.isLastLayer, name.startsWith('last_layer'), `${name} last layer flag`);
  }
  assert.equal(vitLayerId('blocks.11.attn.proj.weight', 12), 12);

  // On a real tiny network: every trainable parameter in exactly one group, with the multipliers above.
  const net = tinyNet(0);
  const groups = dinov2ParamGroups(
    [
      { prefix: 'backbone', params: new Map(net.backbone.namedParameters()), depth: 2 },
      { prefix: 'dino_head', params: new Map(net.dino_head.namedParameters()), depth: null },
    ],
    o,
  );
  const all = groups.flatMap((g) => g.params);
  assert.equal(new Set(all).size, all.length);
  assert.deepEqual(new Set(all), new Set(namedParameters(net).keys()));
  const of = (n: string) => groups.find((g) => g.params.includes(n))!;
  assert.ok(Math.abs(of('backbone.patch_embed.proj.weight').lrMult - 0.1458) < 1e-12);
  assert.equal(of('backbone.register_tokens').wdMult, 1);
  assert.equal(of('backbone.blocks.1.ls2.gamma').wdMult, 0);
  assert.ok(of('dino_head.last_layer.weight_v').isLastLayer);
  assert.ok(!of('dino_head.mlp.0.weight').isLastLayer);
});

test('one DINOv2 step: every student parameter gets a gradient, the teacher none; frozen last layer; EMA', () => {
  const student = tinyNet(0.2); // > 0.1: the batch-subset stochastic depth path
  const teacher = tinyNet(0);
  const trainer = new SSLTrainer({ student, teacher, schedules: schedules(), policies: settings });
  trainer.syncEmaFromStudent();
  const b = batch(4, 1);
  let gradNames: string[] = [];
  let allNonZero = true;
  const vBefore = student.dino_head.lastLayer.weightV.dataSync().slice();
  const qkvBefore = student.backbone.blocks.items[0]!.attn.qkv.weight.dataSync().slice();
  const r = trainer.step(b, 1, (c) => {
    gradNames = [...c.grads.keys()];
    for (const [n, g] of c.grads) if (n !== 'backbone.mask_token' && tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!) === 0) allNonZero = false;
  });
  assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
  // total = local + global + KoLeo + iBOT (koleo_loss and ibot_loss are displayed halved, as the official loss_dict)
  assert.ok(Math.abs(r.loss - (r.dino_local_crops_loss + r.dino_global_crops_loss + 2 * r.koleo_loss + 2 * r.ibot_loss)) < 1e-4);
  assert.deepEqual(new Set(gradNames), new Set(trainer.studentParams.keys()), 'gradient for every student parameter');
  assert.ok(allNonZero, 'non-zero gradients');
  assert.ok(r.masked_patches > 0);
  for (const v of trainer.teacherParams.values()) assert.equal(v.trainable, false);
  // Iteration 1 (after the first warm-up step, whose lr is 0) is in the first epoch: the last layer's lr is 0, so
  // weight_v is unchanged, while the other weights moved.
  assert.ok(r.lr > 0);
  assert.equal(r.last_layer_lr, 0);
  assert.deepEqual(student.dino_head.lastLayer.weightV.dataSync(), vBefore);
  assert.notDeepEqual(student.backbone.blocks.items[0]!.attn.qkv.weight.dataSync(), qkvBefore);
  // EMA: teacher = m * old (= old student) + (1 - m) * new student
  const m = r.momentum;
  const t = teacher.backbone.blocks.items[0]!.attn.qkv.weight.dataSync();
  const s = student.backbone.blocks.items[0]!.attn.qkv.weight.dataSync();
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(t[i]! - (m * qkvBefore[i]! + (1 - m) * s[i]!)) < 1e-6);
  // Past the first epoch (iteration 2 with an epoch of 2) the last layer trains.
  const b2 = batch(4, 2);
  const r2 = trainer.step(b2, 2);
  assert.ok(r2.last_layer_lr > 0);
  assert.notDeepEqual(student.dino_head.lastLayer.weightV.dataSync(), vBefore);
  for (const x of [b, b2]) [x.global, x.local!].forEach((t) => t.dispose());
  trainer.dispose();
});

test('BatchNorm heads (head_use_bn): an EMA teacher normalises with batch statistics, a distillation teacher with its running ones', () => {
  const bnHeads = { dino: { ...heads.dino, head_use_bn: true }, ibot: { ...heads.ibot, head_use_bn: true, separate_head: true } };
  const vit = dinov2Config('small', 1, { imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, initValues: 1e-5 });
  const student = buildNetwork(vit, { recipe: 'dinov2', ...bnHeads }, 0);
  const teacher = buildNetwork(vit, { recipe: 'dinov2', ...bnHeads }, 0);
  assert.ok(student.dino_head.hasBatchNorm && student.ibot_head!.hasBatchNorm);
  assert.ok(!tinyNet(0).dino_head.hasBatchNorm, 'the official head has none');
  const trainer = new SSLTrainer({ student, teacher, schedules: schedules(), policies: settings });
  assert.equal(teacher.backbone.training, false);
  assert.equal(teacher.dino_head.training, true);
  assert.equal(teacher.ibot_head!.training, true);
  const b = batch(4, 3);
  const r = trainer.step(b, 1);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0 && r.teacher_entropy > 0, `loss ${r.loss}`);
  [b.global, b.local!].forEach((t) => t.dispose());
  trainer.dispose();
  // Distillation: the frozen teacher keeps eval mode everywhere; the student's EMA is not run.
  const s2 = buildNetwork(vit, { recipe: 'dinov2', ...bnHeads }, 1);
  const frozen = buildNetwork(vit, { recipe: 'dinov2', ...bnHeads }, 2);
  const ema = buildNetwork(vit, { recipe: 'dinov2', ...bnHeads }, 1);
  const d = new SSLTrainer({ student: s2, teacher: frozen, ema, schedules: schedules(), policies: settings });
  assert.equal(frozen.dino_head.training, false);
  d.dispose();
  // The config key: off in the official defaults, on in the MNIST presets (they collapse without it).
  assert.equal(resolveConfig({ recipe: 'dinov2' }).dino.head_use_bn, false);
  const tiny = resolveConfig({ preset: 'mnist-tiny' });
  assert.ok(tiny.dino.head_use_bn && tiny.ibot.head_use_bn && tiny.ibot.separate_head);
});

test('masks go to the student global crops only; teacher and local crops are unmasked', () => {
  const student = tinyNet(0, 0, {}, true);
  const teacher = tinyNet(0, 0, {}, true);
  const calls: { who: string; images: number; masked: number | null }[] = [];
  // Both ways into the backbone: forwardFeatures (patch tokens, masks) and forward (the CLS token alone).
  const spy = (who: string, net: SSLNetwork) => {
    const features = net.backbone.forwardFeatures.bind(net.backbone);
    const cls = net.backbone.forward.bind(net.backbone);
    net.backbone.forwardFeatures = (x: Tensor, masks?: Tensor | null) => {
      calls.push({ who, images: x.shape[0]!, masked: masks ? tf.tidy(() => tf.sum(masks).dataSync()[0]!) : null });
      return features(x, masks);
    };
    net.backbone.forward = (x: Tensor) => {
      calls.push({ who, images: x.shape[0]!, masked: null });
      return cls(x);
    };
  };
  spy('student', student);
  spy('teacher', teacher);
  const trainer = new SSLTrainer({ student, teacher, schedules: schedules(), policies: { ...settings, centering: 'sinkhorn_knopp' } });
  const b = batch(4, 3);
  const r = trainer.step(b, 0);
  const M = b.masks!.nMaskedPatches;
  assert.ok(M > 0 && Number.isFinite(r.loss) && r.grad_norm_ibot_head! > 0);
  assert.deepEqual(calls, [
    { who: 'teacher', images: 8, masked: null },
    { who: 'student', images: 8, masked: M },
    { who: 'student', images: 8, masked: null }, // 2 local crops x 4 images
  ]);
  [b.global, b.local!].forEach((t) => t.dispose());
  trainer.dispose();
});

test('distillation step: frozen wider teacher (patch 4), narrower student (patch 8) on a matching grid, EMA of the student', () => {
  const teacher = tinyNet(0, 5, { embedDim: 32, numHeads: 4 });
  const student = tinyNet(0, 1, { embedDim: 16, patchSize: 8, imgSize: 32 });
  const ema = tinyNet(0, 1, { embedDim: 16, patchSize: 8, imgSize: 32 });
  const trainer = new SSLTrainer({ student, teacher, ema, schedules: schedules(), policies: settings });
  trainer.syncEmaFromStudent();
  const tBefore = [...trainer.teacherParams].map(([n, v]) => [n, v.dataSync().slice()] as const);
  const b = batch(3, 4);
  const studentGlobal = tf.tidy(() => tf.image.resizeBilinear(b.global.transpose([0, 2, 3, 1]) as tf.Tensor4D, [32, 32], false, true).transpose([0, 3, 1, 2]));
  // every patch in the iBOT loss, student unmasked (the paper's distillation setting)
  const all = new Uint8Array(6 * 16).fill(1);
  const masks = { data: all, shape: [6, 16] as [number, number], maskIndices: Int32Array.from(all.keys()), masksWeight: new Float32Array(96).fill(1 / 16), nMaskedPatches: 96, upperbound: 96 };
  const local = tf.tidy(() => tf.image.resizeBilinear(b.local!.transpose([0, 2, 3, 1]) as tf.Tensor4D, [16, 16]).transpose([0, 3, 1, 2]));
  let names: string[] = [];
  const emaBefore = ema.backbone.blocks.items[0]!.attn.qkv.weight.dataSync().slice();
  const r = trainer.step({ global: b.global, studentGlobal, local, nLocal: 2, masks, maskStudentInput: false }, 3, (c) => (names = [...c.grads.keys()]));
  assert.ok(Number.isFinite(r.loss) && r.ibot_loss > 0 && r.masked_patches === 96);
  // Unmasked student input: mask_token is unused and gets no gradient (AdamW skips it), everything else does.
  assert.deepEqual(new Set(names), new Set([...trainer.studentParams.keys()].filter((n) => n !== 'backbone.mask_token')));
  for (const [n, before] of tBefore) assert.deepEqual(trainer.teacherParams.get(n)!.dataSync(), before, `teacher ${n} must stay frozen`);
  assert.notDeepEqual(ema.backbone.blocks.items[0]!.attn.qkv.weight.dataSync(), emaBefore, 'the EMA follows the student');
  [b.global, b.local!, studentGlobal, local].forEach((t) => t.dispose());
  trainer.dispose();
});

test('official YAML configs (the yaml package) + config layering: vitl14-style overrides, sqrt lr scaling, unknown keys rejected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-yaml-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const y = readConfigFile(file('vitl14.yaml', `
dino:
  head_n_prototypes: 131072   # comment
ibot:
  separate_head: true
  mask_ratio_min_max:
  - 0.1
  - 0.5
train:
  batch_size_per_gpu: 32
  dataset_path: ImageNet22k
  centering: sinkhorn_knopp
student:
  arch: vit_large
  patch_size: 14
  layerscale: 1.0e-05
  block_chunks: 4
optim:
  base_lr: 2.0e-04  # learning rate for a batch size of 1024
  layerwise_decay: 1.0
crops:
  global_crops_scale: [0.32, 1.0]
  local_crops_size: 98
compute_precision:
  grad_scaler: true
`));
  assert.deepEqual((y.ibot as Record<string, unknown>).mask_ratio_min_max, [0.1, 0.5]);
  const cfg = resolveConfig({ recipe: 'dinov2', layers: [y] });
  assert.equal(cfg.dino.head_n_prototypes, 131072);
  assert.equal(cfg.ibot.separate_head, true);
  assert.equal(cfg.train.centering, 'sinkhorn_knopp');
  assert.equal(cfg.student.layerscale, 1e-5);
  assert.equal(cfg.dino.koleo_loss_weight, 0.1); // default kept
  assert.ok(Math.abs(cfg.optim.lr - 2e-4 * Math.sqrt(32 / 1024)) < 1e-15);
  assert.throws(() => resolveConfig({ recipe: 'dinov2', layers: [{ optim: { base_lrr: 1 } }] }), /unknown key 'optim.base_lrr'/);
  // The whole YAML language (anchors included, which the former hand-written subset refused); broken YAML is an
  // error naming the file.
  assert.deepEqual(readConfigFile(file('anchors.yaml', 'a: &x 1\nb: *x\n')), { a: 1, b: 1 });
  assert.throws(() => readConfigFile(file('bad.yaml', 'a:\n  - 1\n  b: 2\n')), /--config .*bad\.yaml/);
  rmSync(dir, { recursive: true, force: true });
});

test('CLI layers: v1-style run flags (--knn_train_size, ...) reach the v2 run settings; --set wins', () => {
  const cfg = resolveConfig(trainConfigSource({ recipe: 'dinov2', preset: 'mnist-tiny', knn_train_size: 500, knn_evals: 0, minutes: 2, set: ['run.knn_test_size=50', 'run.knn_evals=3'] }, 'cpu'));
  assert.equal(cfg.run.knn_train_size, 500);
  assert.equal(cfg.run.knn_test_size, 50);
  assert.equal(cfg.run.knn_evals, 3);
  assert.equal(cfg.run.minutes, 2);
  assert.equal(cfg.run.backend, 'cpu');
});

test('resume: 2 steps + resume for 2 more gives the same losses as 4 steps straight (run folder machinery)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-v2-'));
  const layers: ConfigLayer[] = [{
    ...heads,
    train: { batch_size_per_gpu: 8, OFFICIAL_EPOCH_LENGTH: 2 },
    student: { arch: 'vit_pico', patch_size: 4, drop_path_rate: 0.2 },
    optim: { epochs: 2, warmup_epochs: 1 },
    teacher: { warmup_teacher_temp_epochs: 1 },
    crops: { global_crops_size: 16, local_crops_size: 8, local_crops_number: 2, global_crops_scale: [0.4, 1], local_crops_scale: [0.1, 0.4] },
    run: { data: 'mnist:train:24', minutes: null, color_augment: false, knn_train: null, knn_test: null, backend: 'cpu', num_workers: 0 },
  }];
  const quiet = { progress: false, log: () => {}, handleSigint: false };
  try {
    const logA: string[] = [];
    const a = await trainRun({ recipe: 'dinov2', layers }, { out: join(dir, 'a'), ...quiet, log: (m: string) => logA.push(m) });
    assert.equal(a.status, 'done');
    assert.ok(!logA.some((l) => /collapsed/.test(l)), logA.join('\n'));
    disposeRunNetworks(a.nets);
    const b1 = await trainRun({ recipe: 'dinov2', layers }, { out: join(dir, 'b'), stopAfter: 2, ...quiet });
    assert.equal(b1.status, 'interrupted');
    disposeRunNetworks(b1.nets);
    const b2 = await trainRun({}, { out: join(dir, 'b'), resume: true, ...quiet });
    assert.equal(b2.status, 'done');
    disposeRunNetworks(b2.nets);
    const losses = (p: string) => readFileSync(join(dir, p, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
    const la = losses('a');
    assert.equal(la.length, 4);
    assert.deepEqual(losses('b'), la);

    // A teacher temperature of 100 makes the targets uniform: the run says it has collapsed and how to fix it.
    const logC: string[] = [];
    const hot = { ...layers[0], teacher: { warmup_teacher_temp: 100, teacher_temp: 100, warmup_teacher_temp_epochs: 1 } };
    const c = await trainRun({ recipe: 'dinov2', layers: [hot] }, { out: join(dir, 'c'), ...quiet, log: (m: string) => logC.push(m) });
    disposeRunNetworks(c.nets);
    assert.ok(logC.some((l) => /training has collapsed.*head_use_bn/.test(l)), logC.join('\n'));

    // Distillation from that run folder (trained heads and centers) into a student of another width and patch size.
    const student = { ...layers[0], student: { arch: 'vit_pico', patch_size: 8 }, optim: { epochs: 1, warmup_epochs: 0 }, crops: { ...(layers[0]!.crops as ConfigLayer), local_crops_size: 16 } };
    const d = await trainRun({ recipe: 'dinov2', layers: [DISTILL_DEFAULTS, student, { distill: { teacher: join(dir, 'a'), masking: false } }] }, { out: join(dir, 'd'), ...quiet });
    assert.equal(d.status, 'done');
    assert.equal(d.nets.student.backbone.config.patchSize, 8);
    assert.equal(d.nets.student.dino_head.lastLayer.weightV.shape[0], 32); // the teacher head's prototypes
    const dl = readFileSync(join(dir, 'd', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(dl.length, 2);
    assert.ok(dl.every((m) => Number.isFinite(m.loss) && m.masked_patches === 2 * 8 * 16), 'iBOT over all 16 patches of 2B images');
    disposeRunNetworks(d.nets);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
