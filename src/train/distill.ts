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
import type { ViTConfig } from '../models/config.js';
import { DINOHead } from '../models/dino_head.js';
import { backboneConfig, type SSLConfig } from './config.js';
import { resolveConfig, type ConfigLayer } from './config_layers.js';
import { buildNetwork, headOptions, loadNetworkState, parameterCount, type SSLNetwork } from './networks.js';
import { CHECKPOINT_FILE, loadTrainCheckpoint } from './run_checkpoint.js';
import type { Log } from './run_loop.js';

export interface LoadedTeacher {
  net: SSLNetwork;
  /** Where the heads came from, for the log and the report. */
  heads: 'trained (dinov2 run)' | 'trained (dino run)' | 'from checkpoint' | 'frozen random';
  /** Trained centers of a DINOv2 run teacher (dino_loss.center / ibot_patch_loss.center). */
  centers?: StateDict;
  config: ViTConfig;
}

/** The run folder of `path` when it is one (a folder with config.json + checkpoint, or the checkpoint inside it). */
function runFolderOf(path: string): string | null {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : path.endsWith(CHECKPOINT_FILE) ? dirname(path) : null;
  return dir && existsSync(join(dir, 'config.json')) && existsSync(join(dir, CHECKPOINT_FILE)) ? dir : null;
}

/** Loads the frozen teacher; `cfg` gives the head sizes of fresh heads when the checkpoint has none. */
export async function loadTeacher(path: string, cfg: SSLConfig): Promise<LoadedTeacher> {
  if (!existsSync(path)) throw new Error(`--teacher ${path}: no such file or folder`);
  const run = runFolderOf(path);
  if (run) {
    const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as ConfigLayer;
    if ((saved.distill as ConfigLayer | undefined)?.teacher) throw new Error(`--teacher ${run} is a distillation run: use its distilled_backbone.safetensors as the teacher`);
    // A DINO or DINOv2 run: the EMA teacher with its trained heads (shared by the DINO and iBOT terms when not separate).
    const tcfg = resolveConfig({ layers: [saved] });
    const vit = backboneConfig(tcfg, false);
    const net = buildNetwork(vit, tcfg, 0);
    const ck = loadTrainCheckpoint(join(run, CHECKPOINT_FILE));
    loadNetworkState(net, ck.teacher, `--teacher ${run}`);
    const v2 = tcfg.recipe === 'dinov2';
    return { net, heads: v2 ? 'trained (dinov2 run)' : 'trained (dino run)', ...(v2 ? { centers: ck.center } : {}), config: vit };
  }
  const loaded = await loadViT(path, { head: { normLastLayer: false } });
  const vit = { ...loaded.config, dropPathRate: 0 };
  if (loaded.head) return { net: { backbone: loaded.model, dino_head: loaded.head, ibot_head: null, dinoHeadName: 'dino_head' }, heads: 'from checkpoint', config: vit };
  const seed = cfg.train.seed + 1000;
  const dino_head = new DINOHead(headOptions(cfg.dino, vit.embedDim, seed));
  const ibot_head = cfg.ibot.separate_head ? new DINOHead(headOptions(cfg.ibot, vit.embedDim, seed + 1)) : null;
  return { net: { backbone: loaded.model, dino_head, ibot_head, dinoHeadName: 'dino_head' }, heads: 'frozen random', config: vit };
}

/** The student's config adjusted to the teacher: same prototype counts, head sharing as the teacher's. */
function studentConfigFor(cfg: SSLConfig, t: LoadedTeacher): SSLConfig {
  const c = structuredClone(cfg);
  c.dino.head_n_prototypes = t.net.dino_head.lastLayer.weightV.shape[0]!;
  c.ibot.separate_head = t.net.ibot_head !== null;
  if (t.net.ibot_head) c.ibot.head_n_prototypes = t.net.ibot_head.lastLayer.weightV.shape[0]!;
  return c;
}

export interface DistillNetworks {
  /** The config adjusted to the teacher (what config.json records). */
  cfg: SSLConfig;
  student: SSLNetwork;
  teacher: SSLNetwork;
  ema: SSLNetwork;
  /** The student's global-crop side: teacher grid × student patch. */
  studentGlobalSize: number;
  initialLossState?: StateDict;
  describe: string;
}

/** The frozen teacher (cfg.distill.teacher), a student and its EMA on the teacher's patch grid. */
export async function distillNetworks(config: SSLConfig, log: Log): Promise<DistillNetworks> {
  const teacher = await loadTeacher(config.distill.teacher!, config);
  const cfg = studentConfigFor(config, teacher);
  const G = cfg.crops.global_crops_size;
  const pt = teacher.config.patchSize;
  const ps = cfg.student.patch_size;
  if (G % pt) throw new Error(`crops.global_crops_size ${G} must be a multiple of the teacher's patch size ${pt}`);
  const grid = G / pt;
  const Gs = grid * ps;
  if (Gs !== G) log(`distill: teacher patch ${pt} on ${G}px global crops gives a ${grid}x${grid} grid; the student (patch ${ps}) sees them resized to ${Gs}px so the patch grids match for the iBOT loss`);
  const svit = { ...backboneConfig(cfg, true), imgSize: Gs };
  const student = buildNetwork(svit, cfg, cfg.train.seed);
  const ema = buildNetwork({ ...svit, dropPathRate: 0 }, cfg, cfg.train.seed);
  const masking = cfg.distill.masking;
  return {
    cfg, student, teacher: teacher.net, ema, studentGlobalSize: Gs, initialLossState: teacher.centers,
    describe: `distilling a frozen ${teacher.config.embedDim}-d depth-${teacher.config.depth} patch-${pt} teacher (${(teacher.net.backbone.numParameters() / 1e6).toFixed(2)}M backbone params; heads ${teacher.heads}) ` +
      `into ${cfg.student.arch} (${svit.embedDim}-d, depth ${svit.depth}, patch ${ps}, ${(parameterCount(student) / 1e6).toFixed(2)}M with heads); masking ${masking ? 'on' : 'off (iBOT on every patch)'}`,
  };
}
