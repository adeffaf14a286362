// Every `dinots train` flag reaches the resolved config for both recipes (`--recipe dinov2` used to ignore --lr,
// --teacher_temp, --out_dim, ... without a word), or is refused with an error naming it. Real command-line parsing
// (commander, the registered `train` command) up to the resolved config; no training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/train.js';
import { OFFICIAL_FLAGS, refuseConfigFlagsOnResume, trainConfigSource } from '../../src/cli/train_options.js';
import type { SSLConfig } from '../../src/train/config.js';
import { resolveConfig } from '../../src/train/config_layers.js';
import { PRESETS } from '../../src/train/presets.js';

/** The options `dinots train ARGS` hands to its action. */
async function parsedOptions(args: string[]): Promise<Record<string, unknown>> {
  const program = new Command().option('--backend <name>', 'backend', 'auto').exitOverride();
  register(program);
  let options: Record<string, unknown> | null = null;
  program.commands.find((c) => c.name() === 'train')!.action((o: Record<string, unknown>) => {
    options = o;
  });
  await program.parseAsync(['node', 'dinots', 'train', ...args]);
  return options!;
}

async function resolved(args: string[]): Promise<SSLConfig> {
  const o = await parsedOptions(args);
  refuseConfigFlagsOnResume(o);
  return resolveConfig(trainConfigSource(o, 'cpu'));
}

function at(cfg: SSLConfig, path: string): unknown {
  return path.split('.').reduce<unknown>((node, k) => (node as Record<string, unknown>)[k], cfg);
}

/** flag → [values on the command line, { config key: expected value }] (values away from both recipes' defaults). */
const CASES: Record<string, [string[], Record<string, unknown>]> = {
  arch: [['vit_micro_p4_28'], { 'student.arch': 'vit_micro_p4_28' }],
  patch_size: [['2'], { 'student.patch_size': 2 }],
  embed_dim: [['32'], { 'student.embed_dim': 32 }],
  depth: [['2'], { 'student.depth': 2 }],
  num_heads: [['4'], { 'student.num_heads': 4 }],
  out_dim: [['512'], { 'dino.head_n_prototypes': 512, 'ibot.head_n_prototypes': 512 }],
  head_hidden_dim: [['128'], { 'dino.head_hidden_dim': 128, 'ibot.head_hidden_dim': 128 }],
  head_bottleneck_dim: [['32'], { 'dino.head_bottleneck_dim': 32, 'ibot.head_bottleneck_dim': 32 }],
  norm_last_layer: [['false'], { 'dino.head_norm_last_layer': false }], // (the dinov2 default is false: flipped below)
  use_bn_in_head: [['false'], { 'dino.head_use_bn': false, 'ibot.head_use_bn': false }],
  momentum_teacher: [['0.95'], { 'teacher.momentum_teacher': 0.95 }],
  warmup_teacher_temp: [['0.03'], { 'teacher.warmup_teacher_temp': 0.03 }],
  teacher_temp: [['0.05'], { 'teacher.teacher_temp': 0.05 }],
  warmup_teacher_temp_epochs: [['3'], { 'teacher.warmup_teacher_temp_epochs': 3 }],
  lr: [['0.01'], { 'optim.base_lr': 0.01 }],
  min_lr: [['0.00001'], { 'optim.min_lr': 1e-5 }],
  warmup_epochs: [['3'], { 'optim.warmup_epochs': 3 }],
  weight_decay: [['0.05'], { 'optim.weight_decay': 0.05 }],
  weight_decay_end: [['0.3'], { 'optim.weight_decay_end': 0.3 }],
  clip_grad: [['1.5'], { 'optim.clip_grad': 1.5 }],
  freeze_last_layer: [['2'], { 'optim.freeze_last_layer_epochs': 2 }],
  batch_size_per_gpu: [['16'], { 'train.batch_size_per_gpu': 16 }],
  epochs: [['7'], { 'optim.epochs': 7, 'run.minutes': null }],
  local_crops_number: [['6'], { 'crops.local_crops_number': 6 }],
  drop_path_rate: [['0.1'], { 'student.drop_path_rate': 0.1 }],
  seed: [['3'], { 'train.seed': 3 }],
  global_crop_size: [['32'], { 'crops.global_crops_size': 32 }],
  local_crop_size: [['16'], { 'crops.local_crops_size': 16 }],
  color_augment: [['false'], { 'run.color_augment': false }], // (the dinov2 mnist-tiny default is false: flipped below)
  flip_p: [['0.3'], { 'run.flip_p': 0.3 }],
  solarize_p: [['0.1'], { 'run.solarize_p': 0.1 }],
  blur_p: [['0.2', '0.3', '0.4'], { 'run.blur_p': [0.2, 0.3, 0.4] }],
  blur_sigma: [['0.2', '0.9'], { 'run.blur_sigma': [0.2, 0.9] }],
  pos_embed_init: [['trunc_normal'], { 'student.pos_embed_init': 'trunc_normal' }], // (the dino default is sincos: flipped below)
  final_eval: [['false'], { 'run.final_eval': false }],
  warmup_fraction: [['0.2'], { 'optim.warmup_fraction': 0.2 }],
  knn_train_size: [['100'], { 'run.knn_train_size': 100 }],
  knn_test_size: [['50'], { 'run.knn_test_size': 50 }],
  knn_evals: [['1'], { 'run.knn_evals': 1 }],
  checkpoint_minutes: [['2'], { 'run.checkpoint_minutes': 2 }],
  data_parallel: [['2'], { 'run.data_parallel': 2 }],
  global_crops_scale: [['0.3', '0.9'], { 'crops.global_crops_scale': [0.3, 0.9] }],
  local_crops_scale: [['0.1', '0.3'], { 'crops.local_crops_scale': [0.1, 0.3] }],
  data: [['mnist:train:100'], { 'run.data': 'mnist:train:100' }],
  minutes: [['3'], { 'run.minutes': 3 }],
  steps: [['500'], { 'run.steps': 500, 'run.minutes': null }],
  'knn-train': [['mnist:train:50'], { 'run.knn_train': 'mnist:train:50' }],
  'knn-test': [['mnist:test:50'], { 'run.knn_test': 'mnist:test:50' }],
};

test('every main_dino.py flag of `dinots train` has a case below', () => {
  for (const [name] of OFFICIAL_FLAGS) assert.ok(CASES[name], `no case for --${name}`);
  for (const name of ['global_crops_scale', 'local_crops_scale', 'blur_p', 'blur_sigma']) assert.ok(CASES[name], `no case for --${name}`);
});

const DINOV2_CASES: typeof CASES = {
  ...CASES,
  norm_last_layer: [['true'], { 'dino.head_norm_last_layer': true, 'ibot.head_norm_last_layer': true }],
  pos_embed_init: [['sincos'], { 'student.pos_embed_init': 'sincos' }],
  color_augment: [['true'], { 'run.color_augment': true }],
};

for (const recipe of ['dinov2', 'dino'] as const) {
  test(`dinots train --recipe ${recipe}: each flag reaches the config`, async () => {
    const base = await resolved(['--recipe', recipe]);
    for (const [flag, [values, expected]] of Object.entries(recipe === 'dinov2' ? DINOV2_CASES : CASES)) {
      const cfg = await resolved(['--recipe', recipe, `--${flag}`, ...values]);
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(at(cfg, key), value, `--${flag} ${values.join(' ')} → ${key}`);
      const changed = Object.entries(expected).some(([key, value]) => JSON.stringify(at(base, key)) !== JSON.stringify(value));
      assert.ok(changed, `--${flag}: the case must change the ${recipe} default`);
    }
  });
}

test('--lr is optim.base_lr scaled by the recipe rule: sqrt(batch/1024) for dinov2, batch/256 for dino', async () => {
  const v2 = await resolved(['--recipe', 'dinov2', '--lr', '0.01', '--batch_size_per_gpu', '16']);
  assert.ok(Math.abs(v2.optim.lr - 0.01 * Math.sqrt(16 / 1024)) < 1e-15);
  const v1 = await resolved(['--recipe', 'dino', '--lr', '0.01', '--batch_size_per_gpu', '16']);
  assert.ok(Math.abs(v1.optim.lr - (0.01 * 16) / 256) < 1e-15);
});

test('defaults: mnist-tiny for dinov2 on MNIST, the folder preset for dino on a folder; --config/--set work for dino too', async () => {
  const v2 = await resolved(['--recipe', 'dinov2']);
  assert.equal(v2.student.arch, 'vit_nano_p4_28');
  assert.equal(v2.train.OFFICIAL_EPOCH_LENGTH, 10);
  assert.equal(v2.run.minutes, 10);
  const folder = await resolved(['--data', '/some/folder']);
  assert.equal(folder.recipe, 'dino');
  assert.equal(PRESETS.folder!.fitToData, true); // crops, patch, augmentations: fitted to the images when the run starts
  assert.equal(folder.run.knn_train, null);
  const set = await resolved(['--set', 'teacher.teacher_temp=0.06', '--set', 'lr=0.02']);
  assert.equal(set.teacher.teacher_temp, 0.06);
  assert.equal(set.optim.base_lr, 0.02);
});

test('refused by name: config flags with --resume, a preset of the other recipe, an unknown recipe, a half scale pair', async () => {
  await assert.rejects(resolved(['--resume', '--out', 'runs/x', '--lr', '0.1', '--teacher_temp', '0.05']), /--resume continues the run with its saved config\.json; (--teacher_temp, --lr|--lr, --teacher_temp) cannot change it/);
  await assert.rejects(resolved(['--recipe', 'dinov2', '--preset', 'folder']), /--preset 'folder' is a dino preset, not for --recipe dinov2/);
  await assert.rejects(resolved(['--recipe', 'dinov3']), /--recipe 'dinov3' is unknown/);
  await assert.rejects(resolved(['--global_crops_scale', '0.3']), /--global_crops_scale expects 2 numbers/);
  await assert.rejects(resolved(['--blur_p', '0.3', '0.2']), /--blur_p expects 3 numbers/);
  await assert.rejects(resolved(['--pos_embed_init', 'learned']), /student\.pos_embed_init \(--pos_embed_init\) 'learned' must be one of trunc_normal, sincos/);
  await assert.rejects(resolved(['--recipe', 'dinov2', '--set', 'optim.base_lrr=1']), /unknown key 'optim.base_lrr'/);
});

test('a preset may use the flat main_dino.py names; a typo in one is an error naming the key', async () => {
  PRESETS['test-wide'] = { recipe: 'dino', layer: { embed_dim: 96, out_dim: 2048, teacher: { teacher_temp: 0.05 } } };
  PRESETS['test-typo'] = { recipe: 'dino', layer: { optim: { bas_lr: 1 } } };
  try {
    const cfg = await resolved(['--preset', 'test-wide', '--depth', '2']);
    assert.deepEqual([cfg.recipe, cfg.student.embed_dim, cfg.student.depth, cfg.dino.head_n_prototypes, cfg.teacher.teacher_temp], ['dino', 96, 2, 2048, 0.05]);
    await assert.rejects(resolved(['--preset', 'test-typo']), /unknown key 'optim.bas_lr'/);
  } finally {
    delete PRESETS['test-wide'];
    delete PRESETS['test-typo'];
  }
});
