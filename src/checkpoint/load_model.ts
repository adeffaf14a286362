// A ready model from a checkpoint file: read, map to official names, detect the config, build the ViT (and the
// DINOHead when the file has one) and load the weights strictly.
import type { ViTConfig } from '../models/config.js';
import { DINOHead, type DINOHeadOptions } from '../models/dino_head.js';
import { VisionTransformer } from '../models/vit.js';
import { detectHeadOptions } from './detect.js';
import { loadBackboneWeights, type BackboneWeights, type LoadOptions } from './index.js';

export interface LoadViTOptions extends LoadOptions {
  /** Also build the DINO head when the file has one (default true). */
  withHead?: boolean;
  /** Options for the head beyond what its tensors tell (normLastLayer, seed). */
  head?: Partial<DINOHeadOptions>;
}

export interface LoadedViT {
  model: VisionTransformer;
  config: ViTConfig;
  head?: DINOHead;
  headOptions?: DINOHeadOptions;
  weights: BackboneWeights;
}

export async function loadViT(path: string, opts: LoadViTOptions = {}): Promise<LoadedViT> {
  const weights = await loadBackboneWeights(path, opts);
  const model = new VisionTransformer(weights.config);
  try {
    model.loadStateDict(weights.stateDict, { strict: true });
  } catch (e) {
    model.dispose();
    throw new Error(`${weights.path}: ${(e as Error).message}`);
  }
  const out: LoadedViT = { model, config: weights.config, weights };
  if (weights.head && opts.withHead !== false) {
    const headOptions = { ...detectHeadOptions(weights.head, weights.path), ...opts.head };
    const head = new DINOHead(headOptions);
    try {
      head.loadStateDict(weights.head, { strict: true });
    } catch (e) {
      head.dispose();
      model.dispose();
      throw new Error(`${weights.path} (DINO head): ${(e as Error).message}`);
    }
    out.head = head;
    out.headOptions = headOptions;
  }
  return out;
}
