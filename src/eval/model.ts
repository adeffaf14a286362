// The backbone an evaluation command runs: a checkpoint file (any format the checkpoint module reads: official .pth,
// training checkpoints, HF safetensors or folders, dinots run files) or a named config with random weights.
import { existsSync } from 'node:fs';
import { loadViT } from '../checkpoint/load_model.js';
import { NAMED_CONFIGS } from '../models/config.js';
import { createViT } from '../models/index.js';
import type { VisionTransformer } from '../models/vit.js';

export interface EvalModel {
  model: VisionTransformer;
  /** What was loaded, for reports: the file path, or 'dinov2_vits14 (random init, seed 0)'. */
  description: string;
  random: boolean;
}

export interface EvalModelOptions {
  /** Seed of the random init when `spec` names a config (default 0). */
  seed?: number;
  /** Attention heads, when the checkpoint cannot tell (non-64-wide heads). */
  numHeads?: number;
}

/** Loads `spec`: an existing file or folder is a checkpoint; otherwise it must be a named config. */
export async function loadEvalModel(spec: string, opts: EvalModelOptions = {}): Promise<EvalModel> {
  if (existsSync(spec)) {
    const { model, weights } = await loadViT(spec, { withHead: false, numHeads: opts.numHeads });
    model.eval();
    const c = weights.config;
    return { model, description: `${weights.path} (${c.family}, D=${c.embedDim}, depth ${c.depth}, patch ${c.patchSize}, ${c.numRegisterTokens} registers)`, random: false };
  }
  if (NAMED_CONFIGS[spec]) {
    const seed = opts.seed ?? 0;
    const model = createViT(spec, { seed });
    model.eval();
    return { model, description: `${spec} (random init, seed ${seed})`, random: true };
  }
  throw new Error(`--model '${spec}': no such file, and not a named config (${Object.keys(NAMED_CONFIGS).join(', ')})`);
}

/**
 * Default input size for a model: 224 for models trained at 224 or more (the official eval crop), otherwise the
 * model's own training size (e.g. 28 for the MNIST configs), rounded down to a multiple of the patch size.
 */
export function defaultCropSize(model: VisionTransformer): number {
  const c = model.config;
  const s = c.imgSize >= 224 ? 224 : c.imgSize;
  return Math.max(c.patchSize, Math.floor(s / c.patchSize) * c.patchSize);
}

/** Resize that goes with a crop, in the official ratio 256/224. */
export function defaultResizeSize(crop: number): number {
  return Math.round((crop * 256) / 224);
}
