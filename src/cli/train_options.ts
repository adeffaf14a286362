// The flags of `dinots train` and `dinots distill`, and how they become a config source (train/config_layers.ts):
//   recipe ← preset (--preset, or the default of the recipe for the data) ← --config files ← flags ← --set
// Every main_dino.py-style flag goes to the config through its alias (ALIASES), so it takes effect for every recipe:
// --lr is optim.base_lr (scaled by the recipe's rule), --out_dim both heads' prototypes, --teacher_temp
// teacher.teacher_temp, and so on. With --resume the saved config defines the run: a config flag is refused by name.
import type { Command } from 'commander';
import { ALIASES, dottedOverrides, readConfigFile, type ConfigLayer, type ConfigSource } from '../train/config_layers.js';
import type { RecipeName } from '../train/config.js';
import { DISTILL_DEFAULTS, PRESETS, defaultPreset } from '../train/presets.js';
import { bool, collect, integer, number, tuple } from './parsers.js';

type Parser = (v: string, prev?: any) => unknown;

/** main_dino.py's argument names (snake_case, commander keeps the underscores) with their parsers. */
export const OFFICIAL_FLAGS: [string, string, Parser][] = [
  ['arch', 'vit_tiny | vit_small | vit_base | vit_large | a named config (vit_nano_p4_28, vit_micro_p8_64, ...)', String],
  ['patch_size', 'patch size', integer('--patch_size')],
  ['embed_dim', 'override the width of --arch', integer('--embed_dim')],
  ['depth', 'override the depth of --arch', integer('--depth')],
  ['num_heads', 'override the heads of --arch', integer('--num_heads')],
  ['out_dim', 'prototypes K of the DINO (and iBOT) head', integer('--out_dim')],
  ['head_hidden_dim', 'head hidden width (official 2048)', integer('--head_hidden_dim')],
  ['head_bottleneck_dim', 'head bottleneck (official 256)', integer('--head_bottleneck_dim')],
  ['norm_last_layer', 'freeze weight_g of the last layer (true/false)', bool('--norm_last_layer')],
  ['use_bn_in_head', 'BatchNorm in the heads (true/false)', bool('--use_bn_in_head')],
  ['momentum_teacher', 'base EMA momentum (cosine to 1)', number('--momentum_teacher')],
  ['warmup_teacher_temp', 'initial teacher temperature', number('--warmup_teacher_temp')],
  ['teacher_temp', 'final teacher temperature', number('--teacher_temp')],
  ['warmup_teacher_temp_epochs', 'epochs of teacher temperature warm-up', integer('--warmup_teacher_temp_epochs')],
  ['lr', 'base lr (optim.base_lr: dino scales it by batch/256, dinov2 by sqrt(batch/1024))', number('--lr')],
  ['min_lr', 'final lr of the cosine', number('--min_lr')],
  ['warmup_epochs', 'linear lr warm-up epochs', integer('--warmup_epochs')],
  ['weight_decay', 'initial weight decay', number('--weight_decay')],
  ['weight_decay_end', 'final weight decay', number('--weight_decay_end')],
  ['clip_grad', 'gradient clip norm, per parameter (dino) or per module (dinov2); 0 = off', number('--clip_grad')],
  ['freeze_last_layer', 'epochs with a frozen last layer', integer('--freeze_last_layer')],
  ['batch_size_per_gpu', 'batch size', integer('--batch_size_per_gpu')],
  ['epochs', 'epochs (without --minutes: plan the schedules by epochs)', integer('--epochs')],
  ['local_crops_number', 'local crops per image', integer('--local_crops_number')],
  ['drop_path_rate', 'stochastic depth of the student', number('--drop_path_rate')],
  ['seed', 'random seed', integer('--seed')],
  ['global_crop_size', 'global crop side in pixels', integer('--global_crop_size')],
  ['local_crop_size', 'local crop side in pixels', integer('--local_crop_size')],
  ['color_augment', 'colour jitter, grayscale, blur, solarize and flips of the official pipeline (true/false)', bool('--color_augment')],
  ['flip_p', 'horizontal flip probability (default: the official 0.5; 0 for digits and text)', number('--flip_p')],
  ['solarize_p', 'solarization probability of the second global crop (default: the official 0.2)', number('--solarize_p')],
  ['pos_embed_init', 'pos_embed init: trunc_normal (official) or sincos (2-D sine-cosine grid)', String],
  ['final_eval', 'evaluate on the full --knn-train / --knn-test splits at the end (true/false)', bool('--final_eval')],
  ['warmup_fraction', 'time-planned runs: share of the steps for the lr warm-up', number('--warmup_fraction')],
  ['knn_train_size', 'k-NN bank size (subset of --knn-train)', integer('--knn_train_size')],
  ['knn_test_size', 'k-NN queries (subset of --knn-test)', integer('--knn_test_size')],
  ['knn_evals', 'k-NN evaluations during training besides start and end', integer('--knn_evals')],
  ['checkpoint_minutes', 'minutes between checkpoints', number('--checkpoint_minutes')],
  ['data_parallel', 'data-parallel replicas, each with its own batch of --batch_size_per_gpu on its share of the cores (0 = one per core)', integer('--data_parallel')],
];
/** Flags that take several numbers, with their count and help. */
const TUPLE_FLAGS: [string, number, string][] = [
  ['global_crops_scale', 2, 'two numbers: scale range of the global crops'],
  ['local_crops_scale', 2, 'two numbers: scale range of the local crops'],
  ['blur_p', 3, 'three blur probabilities: first global, second global, local crop (default: the official ones)'],
  ['blur_sigma', 2, 'two numbers: blur sigma range in pixels (default: the official 0.1 2)'],
];

/** The options that shape the config, by commander key → the flag as typed (refused with --resume). */
const CONFIG_OPTIONS: Record<string, string> = {
  ...Object.fromEntries([...OFFICIAL_FLAGS.map(([n]) => n), ...TUPLE_FLAGS.map(([n]) => n)].map((n) => [n, `--${n}`])),
  data: '--data', minutes: '--minutes', steps: '--steps', knnTrain: '--knn-train', knnTest: '--knn-test', recipe: '--recipe', preset: '--preset',
  config: '--config', set: '--set', teacher: '--teacher', studentArch: '--student-arch', studentPatchSize: '--student-patch-size', masking: '--masking',
};

/** The flags both commands take: data, budget, k-NN, run folder, config layers. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--data <spec>', 'training images: a folder, list:FILE, or mnist:train[:N] (default mnist:train)')
    .option('--knn-train <spec>', 'labelled k-NN bank (folder with class subfolders, or mnist:train)')
    .option('--knn-test <spec>', 'labelled k-NN queries (folder with class subfolders, or mnist:test)')
    .option('--minutes <m>', 'training time budget; the schedules are planned from a measured step time', number('--minutes'))
    .option('--steps <n>', 'train exactly this many steps, with the schedules of a time-planned run (the same run on any machine)', integer('--steps'))
    .option('--out <dir>', 'run folder (default runs/<timestamp>)')
    .option('--resume', 'continue the run in --out from its checkpoint (its config.json defines the run)')
    .option('--preset <name>', `config preset (${Object.entries(PRESETS).map(([n, p]) => `${n}: ${p.recipe}`).join(', ')})`)
    .option('--config <yaml>', 'official-style YAML config (ssl_default_config.yaml keys, or flat main_dino.py names; repeatable)', collect)
    .option('--set <key=value>', 'one config value, e.g. --set ibot.separate_head=true or --set lr=0.001 (repeatable)', collect);
}

/** The main_dino.py flags (`dinots train`). */
export function addOfficialFlags(cmd: Command): Command {
  for (const [k, n, help] of TUPLE_FLAGS) cmd.option(`--${k} <v...>`, help, tuple(`--${k}`, n));
  for (const [name, help, parse] of OFFICIAL_FLAGS) cmd.option(`--${name} <v>`, help, parse as (v: string) => unknown);
  return cmd;
}

/** With --resume, the config flags given (none may be: the saved config defines the run). */
export function refuseConfigFlagsOnResume(o: Record<string, unknown>): void {
  if (!o.resume) return;
  const given = Object.keys(CONFIG_OPTIONS).filter((k) => o[k] !== undefined).map((k) => CONFIG_OPTIONS[k]!);
  if (given.length) throw new Error(`--resume continues the run with its saved config.json; ${given.join(', ')} cannot change it (start a new run with another --out)`);
}

/** The layer of the flags given: flat main_dino.py names (aliases) plus the run settings. */
export function flagLayer(o: Record<string, unknown>, backend: string): ConfigLayer {
  const layer: ConfigLayer = { backend };
  for (const [name] of OFFICIAL_FLAGS) if (o[name] !== undefined) layer[name] = o[name] as ConfigLayer[string];
  for (const [k, n] of TUPLE_FLAGS) {
    const v = o[k] as number[] | undefined;
    if (v === undefined) continue;
    if (v.length !== n) throw new Error(`--${k} expects ${n} numbers, got ${v.length}`);
    layer[k] = v;
  }
  if (o.data !== undefined) layer.data = o.data as string;
  if (o.knnTrain !== undefined) layer.knn_train = o.knnTrain as string;
  if (o.knnTest !== undefined) layer.knn_test = o.knnTest as string;
  if (o.minutes !== undefined) layer.minutes = o.minutes as number;
  else if (o.epochs !== undefined || o.steps !== undefined) layer.minutes = null;
  if (o.steps !== undefined) layer.steps = o.steps as number;
  for (const k of Object.keys(layer)) if (!ALIASES[k]) throw new Error(`internal: flag '${k}' has no config alias`);
  return layer;
}

/** File layers, then the flags, then --set. */
function layersOf(o: Record<string, unknown>, flags: ConfigLayer): ConfigLayer[] {
  const files = ((o.config as string[] | undefined) ?? []).map(readConfigFile);
  return [...files, flags, ...(o.set ? [dottedOverrides(o.set as string[])] : [])];
}

/**
 * `dinots train`: the recipe (--recipe, default dino), its preset for the data (presets.ts defaultPreset) and the
 * layers; like the DINO default, 10 minutes unless --minutes or --epochs.
 */
export function trainConfigSource(o: Record<string, unknown>, backend: string): ConfigSource {
  const presetRecipe = o.preset !== undefined ? PRESETS[o.preset as string]?.recipe : undefined;
  const recipe = ((o.recipe as string | undefined) ?? presetRecipe ?? 'dino') as RecipeName;
  const data = (o.data as string | undefined) ?? 'mnist:train';
  const preset = (o.preset as string | undefined) ?? defaultPreset(recipe, data, Boolean(o.config));
  const flags = flagLayer({ ...o, data, minutes: o.minutes ?? (o.epochs !== undefined || o.steps !== undefined ? undefined : 10) }, backend);
  return { recipe, preset, layers: layersOf(o, flags) };
}

/** `dinots distill`: a DINOv2 student (no drop path by default) of the frozen --teacher. */
export function distillConfigSource(o: Record<string, unknown>, backend: string): ConfigSource {
  const flags = flagLayer(o, backend);
  if (o.studentArch !== undefined) flags.arch = o.studentArch as string;
  if (o.studentPatchSize !== undefined) flags.patch_size = o.studentPatchSize as number;
  const distill: ConfigLayer = { distill: { teacher: (o.teacher as string | undefined) ?? null, masking: Boolean(o.masking) } };
  return { recipe: 'dinov2', preset: (o.preset as string | undefined) ?? null, layers: [DISTILL_DEFAULTS, ...layersOf(o, flags), distill] };
}
