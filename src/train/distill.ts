// DINOv2-style distillation (paper §5 "Distillation of smaller models"; the official repo has no distillation code):
// a large pretrained model is the frozen teacher, a smaller student is trained with the same DINO + iBOT (+ KoLeo)
// losses, and an EMA of the student is the result. As in the paper: no masking (the iBOT loss covers every patch of
// the two global crops) and no stochastic depth by default; both can be turned back on.
//
// Teacher heads: the losses compare distributions over the teacher's prototypes, so the teacher needs heads.
//  - A dinots DINOv2 run folder (or its checkpoint.safetensors) holds the trained EMA teacher: backbone, dino_head,
//    ibot_head and both centers. They are used as they are (the DINOv2 way: backbone with its trained heads).
//  - A dinots DINO v1 run folder: the teacher backbone and its head (shared by the DINO and iBOT terms).
//  - A checkpoint with a DINO head (v1 full checkpoints): that head.
//  - A backbone-only file (hub .pth, HF safetensors, teacher_backbone.safetensors): heads are initialised once from
//    the seed and kept frozen. A frozen random MLP + L2 norm + random prototypes is a fixed random projection of the
//    teacher features; with centering and the sharp teacher temperature the losses then make the student reproduce the
//    teacher's similarity structure (a relational feature-matching loss), which works without any head training.
// The student's heads have the teacher heads' number of prototypes (any width / hidden / bottleneck size): the
// heads bridge embedding widths. Patch sizes may differ: the student sees the global crops resized to
// (teacher grid × student patch) pixels, so both patch grids match position by position and the iBOT loss stays
// defined; local crops (student only) must be multiples of the student patch.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadViT } from '../checkpoint/load_model.js';
import type { StateDict } from '../checkpoint/types.js';
import { detectHeadOptions } from '../checkpoint/detect.js';
import { DINOHead } from '../models/dino_head.js';
import { VisionTransformer } from '../models/vit.js';
import type { ViTConfig } from '../models/config.js';
import { resolveV2Config, v2BackboneConfig, type Dinov2Config } from './dinov2_config.js';
import { buildV2Network, headOptions, loadV2State, type V2Network } from './dinov2_networks.js';
import { runV2, type RunNetworks, type V2RunOptions, type V2RunResult } from './dinov2_run.js';
import { readRunConfig } from './run_common.js';
import { backboneConfig, DEFAULT_CONFIG, type TrainConfig } from './config.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint } from './run_checkpoint.js';
import type { YamlMap } from './yaml_config.js';

export interface DistillSettings {
  /** Teacher: a run folder, a run checkpoint, or any backbone checkpoint loadViT reads. */
  teacher: string;
  /** Mask the student's global crops as in DINOv2 pretraining (default false, as the paper's distillation). */
  masking: boolean;
}

export interface LoadedTeacher {
  net: V2Network;
  /** Where the heads came from, for the log and the report. */
  heads: 'trained (dinov2 run)' | 'trained (dino run)' | 'from checkpoint' | 'frozen random';
  /** Trained centers of a DINOv2 run teacher (dino_loss.center / ibot_patch_loss.center). */
  centers?: StateDict;
  config: ViTConfig;
}

function sub(sd: StateDict, prefix: string): StateDict {
  return new Map([...sd].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
}

/** The run folder of `path` when it is one (a folder with config.json + checkpoint, or the checkpoint inside it). */
function runFolderOf(path: string): string | null {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : path.endsWith(CHECKPOINT_FILE) ? dirname(path) : null;
  return dir && existsSync(join(dir, 'config.json')) && existsSync(join(dir, CHECKPOINT_FILE)) ? dir : null;
}

/** Loads the frozen teacher; `cfg` gives the head sizes of fresh heads when the checkpoint has none. */
export async function loadTeacher(path: string, cfg: Dinov2Config): Promise<LoadedTeacher> {
  if (!existsSync(path)) throw new Error(`--teacher ${path}: no such file or folder`);
  const run = runFolderOf(path);
  if (run) {
    const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as Record<string, unknown>;
    const ck = loadTrainCheckpoint(join(run, CHECKPOINT_FILE));
    if (saved.recipe === 'dinov2') {
      const { recipe: _r, ...rest } = saved;
      const tcfg = resolveV2Config(null, [rest as YamlMap]);
      const vit = v2BackboneConfig(tcfg, false);
      const net = buildV2Network(vit, tcfg, 0);
      loadV2State(net, ck.teacher, `--teacher ${run}`);
      return { net, heads: 'trained (dinov2 run)', centers: ck.center, config: vit };
    }
    if (saved.recipe === 'distill') throw new Error(`--teacher ${run} is a distillation run: use its distilled_backbone.safetensors as the teacher`);
    // A DINO v1 run (config.json with the official main_dino.py argument names).
    const v1 = { ...DEFAULT_CONFIG, ...(saved as Partial<TrainConfig>) };
    const vit = { ...backboneConfig(v1), dropPathRate: 0 };
    const backbone = new VisionTransformer(vit);
    backbone.loadStateDict(sub(ck.teacher, 'backbone.'));
    const headSd = sub(ck.teacher, 'head.');
    const dino_head = new DINOHead({ ...detectHeadOptions(headSd, run), normLastLayer: v1.norm_last_layer });
    dino_head.loadStateDict(headSd);
    return { net: { backbone, dino_head, ibot_head: null }, heads: 'trained (dino run)', config: vit };
  }
  const loaded = await loadViT(path, { head: { normLastLayer: false } });
  const vit = { ...loaded.config, dropPathRate: 0 };
  if (loaded.head) return { net: { backbone: loaded.model, dino_head: loaded.head, ibot_head: null }, heads: 'from checkpoint', config: vit };
  const seed = cfg.train.seed + 1000;
  const dino_head = new DINOHead(headOptions(cfg.dino, vit.embedDim, seed));
  const ibot_head = cfg.ibot.separate_head ? new DINOHead(headOptions(cfg.ibot, vit.embedDim, seed + 1)) : null;
  return { net: { backbone: loaded.model, dino_head, ibot_head }, heads: 'frozen random', config: vit };
}

/** The student's config adjusted to the teacher: same prototype counts, head sharing as the teacher's. */
function studentConfigFor(cfg: Dinov2Config, t: LoadedTeacher): Dinov2Config {
  const c = structuredClone(cfg);
  c.dino.head_n_prototypes = t.net.dino_head.lastLayer.weightV.shape[0]!;
  c.ibot.separate_head = t.net.ibot_head !== null;
  if (t.net.ibot_head) c.ibot.head_n_prototypes = t.net.ibot_head.lastLayer.weightV.shape[0]!;
  return c;
}

/**
 * Distillation run. `layers` are config layers (YAML files, CLI values) over `preset`; the distillation defaults
 * (student.drop_path_rate 0) sit between the preset and the layers.
 */
export async function distillRun(preset: string | null, layers: YamlMap[], settings: DistillSettings, opts: V2RunOptions): Promise<V2RunResult> {
  let cfg: Dinov2Config;
  let s = settings;
  if (opts.resume) {
    const { recipe: _r, distill, ...saved } = readRunConfig(opts.out, 'distill');
    s = distill as DistillSettings;
    cfg = resolveV2Config(null, [saved as YamlMap], { distill: true });
  } else cfg = resolveV2Config(preset, [{ student: { drop_path_rate: 0 } }, ...layers], { distill: true });
  const teacher = await loadTeacher(s.teacher, cfg);
  cfg = studentConfigFor(cfg, teacher);
  const G = cfg.crops.global_crops_size;
  const pt = teacher.config.patchSize;
  const ps = cfg.student.patch_size;
  if (G % pt) throw new Error(`crops.global_crops_size ${G} must be a multiple of the teacher's patch size ${pt}`);
  const grid = G / pt;
  const Gs = grid * ps;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (Gs !== G) log(`distill: teacher patch ${pt} on ${G}px global crops gives a ${grid}x${grid} grid; the student (patch ${ps}) sees them resized to ${Gs}px so the patch grids match for the iBOT loss`);
  const build = (): RunNetworks => {
    const svit = { ...v2BackboneConfig(cfg, true), imgSize: Gs };
    const student = buildV2Network(svit, cfg, cfg.train.seed);
    const ema = buildV2Network({ ...svit, dropPathRate: 0 }, cfg, cfg.train.seed);
    const sp = [student.backbone, student.dino_head, student.ibot_head].reduce((n, m) => n + (m?.numParameters() ?? 0), 0);
    const tp = teacher.net.backbone.numParameters();
    return {
      student, teacher: teacher.net, ema, studentGlobalSize: Gs, maskStudentInput: s.masking,
      initialLossState: teacher.centers,
      describe: `distilling a frozen ${teacher.config.embedDim}-d depth-${teacher.config.depth} patch-${pt} teacher (${(tp / 1e6).toFixed(2)}M backbone params; heads ${teacher.heads}) ` +
        `into ${cfg.student.arch} (${svit.embedDim}-d, depth ${svit.depth}, patch ${ps}, ${(sp / 1e6).toFixed(2)}M with heads); masking ${s.masking ? 'on' : 'off (iBOT on every patch)'}`,
    };
  };
  return runV2(cfg, { ...opts, log }, { recipe: 'distill', distill: s }, build);
}
