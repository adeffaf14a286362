// Public checkpoint API: read any supported file into a state dict, map it to official names, detect the model config,
// and save as safetensors or torch .pth.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ViTConfig } from '../models/config.js';
import { detectConfig, parseConfigJson } from './detect.js';
import { toOfficial, type Naming } from './keymap.js';
import { extractStateDict, readPth } from './pth.js';
import type { PickleValue } from './pickle.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import type { StateDict } from './types.js';

export type { DType, HostTensor, StateDict } from './types.js';
export { savePth } from './pth_write.js';
export { readPth, extractStateDict, describeValue, isHostTensor } from './pth.js';
export { PyObject, PyGlobal, type PickleValue } from './pickle.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';
export { toOfficial, fromOfficial, toHfConfig, type Naming, type OfficialWeights } from './keymap.js';
export { detectConfig, expectedShapes, checkStateDict, parseConfigJson } from './detect.js';

export type CheckpointFormat = 'pth' | 'safetensors';

export interface CheckpointFile {
  path: string;
  format: CheckpointFormat;
  stateDict: StateDict;
  /** safetensors `__metadata__` (empty for .pth). */
  metadata: Record<string, string>;
  /** Keys followed to reach the state dict in a full training checkpoint, e.g. ['teacher']. */
  extractedFrom: string[];
  /** The whole unpickled object of a .pth (dicts are Maps, unknown classes inert PyObjects). */
  tree?: PickleValue;
}

export interface ReadOptions {
  /** In full training checkpoints: which network's weights to take (default teacher, as DINO's eval scripts do). */
  prefer?: 'teacher' | 'student';
}

/** The weights file a folder stands for: an HF folder's, or a dinots run folder's exported result backbone. */
const FOLDER_WEIGHTS = ['model.safetensors', 'pytorch_model.bin', 'teacher_backbone.safetensors', 'distilled_backbone.safetensors'];

function resolveFile(path: string): string {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  if (!statSync(path).isDirectory()) return path;
  for (const f of FOLDER_WEIGHTS) if (existsSync(join(path, f))) return join(path, f);
  if (existsSync(join(path, 'checkpoint.safetensors'))) {
    throw new Error(`${path}: a run folder whose run has not finished (no teacher_backbone.safetensors yet): finish it with dinots train --resume --out ${path}, or pass ${join(path, 'checkpoint.safetensors')} itself`);
  }
  throw new Error(`${path}: folder has none of ${FOLDER_WEIGHTS.join(', ')} (an HF model folder or a finished dinots run folder)`);
}

export function sniffFormat(path: string): CheckpointFormat {
  const fd = openSync(path, 'r');
  const head = new Uint8Array(9);
  let n: number;
  try {
    n = readSync(fd, head, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4) return 'pth';
  if (n === 9 && head[8] === 0x7b /* '{' */) return 'safetensors';
  if (/\.(pth|pt|bin|ckpt)$/i.test(path) || (n > 0 && head[0] === 0x80)) return 'pth'; // readPth explains legacy files
  throw new Error(`${path}: unknown checkpoint format (expected a torch.save zip .pth/.pt/.bin or a .safetensors file)`);
}

/** Reads a checkpoint file (or HF folder) into its raw state dict, as named in the file. */
export function readCheckpoint(path: string, opts: ReadOptions = {}): CheckpointFile {
  const file = resolveFile(path);
  const format = sniffFormat(file);
  if (format === 'safetensors') {
    const { tensors, metadata } = readSafetensors(file);
    return { path: file, format, stateDict: tensors, metadata, extractedFrom: [] };
  }
  const { value } = readPth(file);
  const { stateDict, path: from } = extractStateDict(value, { prefer: opts.prefer, source: file });
  return { path: file, format, stateDict, metadata: {}, extractedFrom: from, tree: value };
}

export async function readStateDict(path: string, opts: ReadOptions = {}): Promise<StateDict> {
  return readCheckpoint(path, opts).stateDict;
}

/** Model settings stored with a checkpoint: safetensors metadata `dinots_config`, `<file>.json`, or an HF `config.json`. */
export function findFileConfig(ck: CheckpointFile): { config: Partial<ViTConfig>; source: string } | null {
  if (ck.metadata.dinots_config) {
    try {
      return { config: parseConfigJson(JSON.parse(ck.metadata.dinots_config), `${ck.path} metadata`), source: 'safetensors metadata dinots_config' };
    } catch (e) {
      throw new Error(`${ck.path}: metadata 'dinots_config' is not valid JSON (${(e as Error).message})`);
    }
  }
  for (const f of [`${ck.path}.json`, join(dirname(ck.path), 'config.json')]) {
    if (!existsSync(f)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new Error(`${f}: not valid JSON (${(e as Error).message}); fix or remove it`);
    }
    return { config: parseConfigJson(obj, f), source: f };
  }
  return null;
}

export interface LoadOptions extends ReadOptions {
  numHeads?: number;
  config?: Partial<ViTConfig>;
}

export interface BackboneWeights {
  config: ViTConfig;
  /** Official backbone names. */
  stateDict: StateDict;
  /** Official DINOHead names, when the file has a head. */
  head?: StateDict;
  naming: Naming;
  family: 'dino' | 'dinov2';
  format: CheckpointFormat;
  path: string;
  notes: string[];
  ignored: string[];
}

/** Reads a backbone checkpoint of any supported naming and detects its config (checked against the tensors). */
export async function loadBackboneWeights(path: string, opts: LoadOptions = {}): Promise<BackboneWeights> {
  const ck = readCheckpoint(path, opts);
  const official = toOfficial(ck.stateDict);
  if (!official.family) throw new Error(`${ck.path}: holds only a DINO head (${official.head?.size ?? 0} tensors), no backbone`);
  const fileConfig = findFileConfig(ck);
  const config = detectConfig(official.stateDict, {
    numHeads: opts.numHeads,
    config: opts.config,
    fileConfig: fileConfig?.config,
    naming: official.naming,
    source: ck.path,
  });
  const notes = [...official.notes];
  if (ck.extractedFrom.length) notes.push(`state dict taken from '${ck.extractedFrom.join('.')}'`);
  if (fileConfig) notes.push(`config from ${fileConfig.source}`);
  return {
    config,
    stateDict: official.stateDict,
    head: official.head,
    naming: official.naming,
    family: official.family,
    format: ck.format,
    path: ck.path,
    notes,
    ignored: official.ignored,
  };
}

/** Writes safetensors with `format: pt` and, when given, the model config as JSON under `dinots_config`. */
export function saveSafetensors(path: string, sd: StateDict, metadata: Record<string, string> = {}, config?: ViTConfig): void {
  writeSafetensors(path, sd, { format: 'pt', ...metadata, ...(config ? { dinots_config: JSON.stringify(config) } : {}) });
}
