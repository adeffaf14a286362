// How a run's config is assembled: recipe ← preset ← layers (YAML files, CLI flags, --set, a saved config.json), each
// merged like OmegaConf.merge, then optim.lr from the scaling rule and one validation (config.ts).
//   readConfigFile('vitl14.yaml')      an official YAML config (read with the `yaml` package) or a JSON file
//   dottedOverrides(['optim.base_lr=1e-3'])
//   resolveConfig({ recipe, preset, layers })
// A layer may use main_dino.py's flat argument names (--lr, --out_dim, --teacher_temp...) as aliases of the nested
// keys (ALIASES). Sections of the official files with no meaning here (MODEL, compute_precision: we train in fp32 on
// one process; evaluation) are accepted and ignored; any other unknown key is an error naming it.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { availableParallelism } from 'node:os';
import { scaledLr, validateConfig, type RecipeName, type SSLConfig } from './config.js';
import { PRESETS, RECIPES } from './presets.js';

export type ConfigValue = number | boolean | string | null | ConfigValue[] | { [k: string]: ConfigValue };
export type ConfigLayer = { [k: string]: ConfigValue };

/**
 * main_dino.py's flat argument names (and the dinots v1 additions) → the nested keys they set. Head sizes set both
 * heads, so a separate iBOT head keeps the DINO head's shape.
 */
export const ALIASES: Record<string, string[]> = {
  arch: ['student.arch'],
  patch_size: ['student.patch_size'],
  embed_dim: ['student.embed_dim'],
  depth: ['student.depth'],
  num_heads: ['student.num_heads'],
  drop_path_rate: ['student.drop_path_rate'],
  out_dim: ['dino.head_n_prototypes', 'ibot.head_n_prototypes'],
  head_hidden_dim: ['dino.head_hidden_dim', 'ibot.head_hidden_dim'],
  head_bottleneck_dim: ['dino.head_bottleneck_dim', 'ibot.head_bottleneck_dim'],
  use_bn_in_head: ['dino.head_use_bn', 'ibot.head_use_bn'],
  norm_last_layer: ['dino.head_norm_last_layer', 'ibot.head_norm_last_layer'],
  momentum_teacher: ['teacher.momentum_teacher'],
  warmup_teacher_temp: ['teacher.warmup_teacher_temp'],
  teacher_temp: ['teacher.teacher_temp'],
  warmup_teacher_temp_epochs: ['teacher.warmup_teacher_temp_epochs'],
  lr: ['optim.base_lr'],
  min_lr: ['optim.min_lr'],
  warmup_epochs: ['optim.warmup_epochs'],
  warmup_fraction: ['optim.warmup_fraction'],
  weight_decay: ['optim.weight_decay'],
  weight_decay_end: ['optim.weight_decay_end'],
  clip_grad: ['optim.clip_grad'],
  freeze_last_layer: ['optim.freeze_last_layer_epochs'],
  epochs: ['optim.epochs'],
  batch_size_per_gpu: ['train.batch_size_per_gpu'],
  seed: ['train.seed'],
  global_crops_scale: ['crops.global_crops_scale'],
  local_crops_scale: ['crops.local_crops_scale'],
  local_crops_number: ['crops.local_crops_number'],
  global_crop_size: ['crops.global_crops_size'],
  local_crop_size: ['crops.local_crops_size'],
  color_augment: ['run.color_augment'],
  flip_p: ['run.flip_p'],
  solarize_p: ['run.solarize_p'],
  blur_p: ['run.blur_p'],
  blur_sigma: ['run.blur_sigma'],
  final_eval: ['run.final_eval'],
  pos_embed_init: ['student.pos_embed_init'],
  data: ['run.data'],
  minutes: ['run.minutes'],
  steps: ['run.steps'],
  knn_train: ['run.knn_train'],
  knn_test: ['run.knn_test'],
  knn_train_size: ['run.knn_train_size'],
  knn_test_size: ['run.knn_test_size'],
  knn_k: ['run.knn_k'],
  knn_temperature: ['run.knn_temperature'],
  knn_evals: ['run.knn_evals'],
  checkpoint_minutes: ['run.checkpoint_minutes'],
  num_workers: ['run.num_workers'],
  data_parallel: ['run.data_parallel'],
  backend: ['run.backend'],
};

const IGNORED_SECTIONS = new Set(['MODEL', 'compute_precision', 'evaluation']);
const IGNORED_KEYS: Record<string, string[]> = {
  train: ['dataset_path', 'output_dir', 'saveckp_freq', 'num_workers', 'cache_dataset'],
  student: ['pretrained_weights', 'block_chunks'],
};

function isMap(v: unknown): v is ConfigLayer {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An official-style YAML config (or a .json file) as a layer. */
export function readConfigFile(path: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`--config ${path}: cannot read the file (${(e as Error).message})`);
  }
  let v: unknown;
  try {
    v = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as Error).message}`);
  }
  if (v === null || v === undefined) return {};
  if (!isMap(v)) throw new Error(`--config ${path}: the top level must be a map of sections`);
  return v;
}

/** OmegaConf-style merge: nested maps merge key by key; lists and scalars in `over` replace. Returns a new object. */
export function mergeConfig<T>(base: T, over: unknown): T {
  if (!isMap(over)) return (over === undefined ? base : over) as T;
  if (!isMap(base)) return structuredClone(over) as T;
  const out: ConfigLayer = structuredClone(base as ConfigLayer);
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeConfig(out[k], v) : structuredClone(v);
  return out as T;
}

function setPath(layer: ConfigLayer, path: string[], value: ConfigValue): void {
  let node = layer;
  for (const k of path.slice(0, -1)) node = (isMap(node[k]) ? node[k] : (node[k] = {})) as ConfigLayer;
  node[path[path.length - 1]!] = value;
}

/** 'optim.base_lr=0.001' (or an alias: 'lr=0.001') style overrides, the value parsed as a YAML scalar. */
export function dottedOverrides(pairs: string[]): ConfigLayer {
  const out: ConfigLayer = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`--set '${p}': expected section.key=value (e.g. optim.base_lr=0.001)`);
    setPath(out, p.slice(0, eq).split('.'), parseYaml(p.slice(eq + 1)) as ConfigValue);
  }
  return out;
}

/** The layer with its top-level flat aliases replaced by the nested keys they name. */
export function expandAliases(layer: ConfigLayer): ConfigLayer {
  const out: ConfigLayer = {};
  const flat: [string[], ConfigValue][] = [];
  for (const [k, v] of Object.entries(layer)) {
    if (ALIASES[k] && !isMap(v)) for (const path of ALIASES[k]!) flat.push([path.split('.'), v]);
    else out[k] = v;
  }
  const nested: ConfigLayer = {};
  for (const [path, v] of flat) setPath(nested, path, v);
  return mergeConfig(out, nested);
}

/** Throws on keys the config does not know (catches typos in YAML files and --set). */
function checkKeys(over: ConfigLayer, base: Record<string, unknown>, where: string): void {
  for (const [k, v] of Object.entries(over)) {
    if (!where && IGNORED_SECTIONS.has(k)) continue;
    if (IGNORED_KEYS[where]?.includes(k)) continue;
    if (!(k in base)) throw new Error(`config: unknown key '${where ? `${where}.` : ''}${k}' (known: ${Object.keys(base).join(', ')})`);
    const b = base[k];
    if (isMap(b) && isMap(v)) checkKeys(v, b as Record<string, unknown>, where ? `${where}.${k}` : k);
  }
}

function dropIgnored(over: ConfigLayer): ConfigLayer {
  const out: ConfigLayer = {};
  for (const [k, v] of Object.entries(over)) {
    if (IGNORED_SECTIONS.has(k)) continue;
    out[k] = IGNORED_KEYS[k] && isMap(v) ? Object.fromEntries(Object.entries(v).filter(([kk]) => !IGNORED_KEYS[k]!.includes(kk))) : v;
  }
  return out;
}

export interface ConfigSource {
  /** The recipe; default: the preset's, or the `recipe` key of the first layer that has one, or 'dino'. */
  recipe?: RecipeName;
  preset?: string | null;
  layers?: ConfigLayer[];
}

/** Recipe ← preset ← each layer in order; then optim.lr by the scaling rule and validation. */
export function resolveConfig({ recipe, preset = null, layers = [] }: ConfigSource): SSLConfig {
  if (recipe !== undefined && !RECIPES[recipe]) throw new Error(`--recipe '${recipe}' is unknown: use ${Object.keys(RECIPES).join(' or ')}`);
  const p = preset === null ? null : PRESETS[preset];
  if (preset !== null && !p) throw new Error(`--preset '${preset}' is unknown; known: ${Object.keys(PRESETS).join(', ')}`);
  if (p && recipe && p.recipe !== recipe) throw new Error(`--preset '${preset}' is a ${p.recipe} preset, not for --recipe ${recipe}`);
  const layerRecipe = layers.find((l) => typeof l.recipe === 'string')?.recipe as RecipeName | undefined;
  const r = recipe ?? p?.recipe ?? layerRecipe ?? 'dino';
  if (!RECIPES[r]) throw new Error(`--recipe '${r}' is unknown: use ${Object.keys(RECIPES).join(' or ')}`);
  let cfg: SSLConfig = structuredClone(RECIPES[r]);
  // The preset is a layer like the others (nested keys or flat aliases), first.
  for (const raw of [...(p ? [p.layer] : []), ...layers]) {
    const layer = expandAliases(raw);
    if (layer.recipe !== undefined && layer.recipe !== r) throw new Error(`config: recipe '${String(layer.recipe)}' does not match --recipe ${r}`);
    checkKeys(layer, cfg as unknown as Record<string, unknown>, '');
    cfg = mergeConfig(cfg, dropIgnored(layer));
  }
  validateConfig(cfg);
  if (cfg.run.data_parallel === 0) cfg.run.data_parallel = availableParallelism();
  cfg.optim.lr = scaledLr(cfg);
  return cfg;
}
