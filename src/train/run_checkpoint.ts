// The training checkpoint of a run: one safetensors file holding student, teacher, optimizer state and the DINO
// center, plus a JSON metadata entry with everything else needed to continue exactly (iteration, epoch, position in
// the data order, RNG states, the schedule plan, the config). Written atomically (temp file in the same folder, fsync,
// rename), so a crash or kill -9 during a write leaves the previous checkpoint intact. The tensors carry a CRC-32 in
// the metadata, and each save keeps the one before as checkpoint.prev.safetensors: a checkpoint damaged on disk later
// (bad sector, a copy cut short) is detected, and --resume falls back to the previous one with a warning.
import { copyFileSync, existsSync, linkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { StateDict } from '../checkpoint/types.js';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const PREVIOUS_CHECKPOINT_FILE = 'checkpoint.prev.safetensors';
const META_KEY = 'dinots_train_state';
const CRC_KEY = 'dinots_crc32';

/** CRC-32 of the tensors' bytes, in name order. */
function tensorsCrc(sd: StateDict): string {
  let crc = 0;
  for (const name of [...sd.keys()].sort()) {
    const d = sd.get(name)!.data as ArrayBufferView;
    crc = crc32(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), crc);
  }
  return (crc >>> 0).toString(16);
}

/** Host-side state besides the tensors. */
export interface TrainProgress {
  /** Global iterations done (the next step uses schedule index `iteration`). */
  iteration: number;
  epoch: number;
  /** Iterations done within `epoch` (= the position in that epoch's data order, in batches). */
  epoch_iteration: number;
  /** Seconds spent training so far (for time budgets across resumes). */
  train_seconds: number;
  /** Named RNG states (e.g. drop path), each [u32, u32, u32, u32]. */
  rng: Record<string, [number, number, number, number]>;
  /** Planned schedule length and epoch length. */
  total_iterations: number;
  iters_per_epoch: number;
  /** Free-form extra (config, k-NN history...). */
  [k: string]: unknown;
}

export interface TrainCheckpoint {
  student: StateDict;
  teacher: StateDict;
  optimizer: StateDict;
  center: StateDict;
  progress: TrainProgress;
}

const SECTIONS = ['student', 'teacher', 'optimizer', 'dino_loss'] as const;

export function saveTrainCheckpoint(path: string, ck: TrainCheckpoint): void {
  const sd: StateDict = new Map();
  const put = (prefix: string, part: StateDict) => {
    for (const [k, t] of part) sd.set(`${prefix}.${k}`, t);
  };
  put('student', ck.student);
  put('teacher', ck.teacher);
  put('optimizer', ck.optimizer);
  put('dino_loss', ck.center);
  // The current checkpoint becomes the previous one (a hard link: no copy), then the new one replaces it atomically.
  if (existsSync(path)) {
    const prev = join(dirname(path), PREVIOUS_CHECKPOINT_FILE);
    rmSync(prev, { force: true });
    try {
      linkSync(path, prev);
    } catch {
      copyFileSync(path, prev);
    }
  }
  writeSafetensors(path, sd, { [META_KEY]: JSON.stringify(ck.progress), [CRC_KEY]: tensorsCrc(sd), format: 'dinots-train-checkpoint-v1' });
}

/**
 * The run folder's checkpoint for --resume; when it is damaged, the previous one (checkpoint.prev.safetensors), with
 * a warning naming what was wrong.
 */
export function loadResumeCheckpoint(path: string, log: (line: string) => void): TrainCheckpoint {
  try {
    return loadTrainCheckpoint(path);
  } catch (e) {
    const prev = join(dirname(path), PREVIOUS_CHECKPOINT_FILE);
    if (!existsSync(path) || !existsSync(prev)) throw e;
    const ck = loadTrainCheckpoint(prev);
    log(`warning: ${(e as Error).message}\nresuming from the previous checkpoint ${prev} (iteration ${ck.progress.iteration}) instead`);
    return ck;
  }
}

export function loadTrainCheckpoint(path: string): TrainCheckpoint {
  if (!existsSync(path)) throw new Error(`no training checkpoint at ${path}: --resume needs a run folder with ${CHECKPOINT_FILE}`);
  const { tensors, metadata } = readSafetensors(path);
  const meta = metadata[META_KEY];
  if (!meta) throw new Error(`${path} is not a dinots training checkpoint (no '${META_KEY}' metadata)`);
  const crc = metadata[CRC_KEY];
  if (crc !== undefined && crc !== tensorsCrc(tensors)) throw new Error(`${path} is damaged: its tensors do not match their CRC-32 (${crc})`);
  const parts: Record<(typeof SECTIONS)[number], StateDict> = { student: new Map(), teacher: new Map(), optimizer: new Map(), dino_loss: new Map() };
  for (const [k, t] of tensors) {
    const dot = k.indexOf('.');
    const sec = k.slice(0, dot) as (typeof SECTIONS)[number];
    if (!parts[sec]) throw new Error(`${path}: unexpected tensor '${k}'`);
    parts[sec].set(k.slice(dot + 1), t);
  }
  return { student: parts.student, teacher: parts.teacher, optimizer: parts.optimizer, center: parts.dino_loss, progress: JSON.parse(meta) as TrainProgress };
}
