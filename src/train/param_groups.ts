// DINOv2 parameter groups (dinov2/utils/param_groups.py, called per student module as SSLMetaArch.get_params_groups):
//   layer id   0 for patch_embed / pos_embed / cls_token / mask_token / register_tokens, i+1 for blocks.i.*,
//              L+1 for everything else (final norm; every parameter of a head, which has no blocks)
//   lr_mult    layerwiseDecay^(L+1−layer_id), × patchEmbedLrMult for names containing 'patch_embed'
//   wd_mult    0 for names ending in '.bias' or containing 'norm' or 'gamma' (LayerScale), else 1
//   last layer names containing 'last_layer' follow the last-layer lr schedule (0 during the first epoch)
// Parameters with equal (lr_mult, wd_mult, last layer) are fused into one group, as fuse_params_groups does.
// Names are the trainer's `<module>.<official name>` (backbone., dino_head., ibot_head.); the module prefix is
// stripped before matching, so a head parameter never looks like a backbone one.
import type { Variable } from '../backend/tf.js';
import type { ParamGroup } from './optim.js';

export interface V2ParamGroup extends ParamGroup {
  isLastLayer: boolean;
}

export interface V2GroupOptions {
  /** optim.layerwise_decay (0.9 default config, 1.0 in vitl14/vitg14). */
  layerwiseDecay: number;
  /** optim.patch_embed_lr_mult (0.2). */
  patchEmbedLrMult: number;
}

const LAYER_ZERO = ['pos_embed', 'patch_embed', 'mask_token', 'cls_token', 'register_tokens'];

/** The official layer id of a backbone parameter name (without module prefix); `depth` = number of blocks L. */
export function vitLayerId(name: string, depth: number): number {
  if (LAYER_ZERO.some((k) => name.includes(k))) return 0;
  const m = /^blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[1]) + 1;
  return depth + 1;
}

export interface ParamMultipliers {
  layerId: number;
  lrMult: number;
  wdMult: number;
  isLastLayer: boolean;
}

/** Multipliers of one parameter. `depth` is the backbone depth for backbone parameters, null for a head. */
export function paramMultipliers(name: string, depth: number | null, o: V2GroupOptions): ParamMultipliers {
  const L = depth ?? 0;
  const layerId = depth === null ? L + 1 : vitLayerId(name, L);
  let lrMult = o.layerwiseDecay ** (L + 1 - layerId);
  if (name.includes('patch_embed')) lrMult *= o.patchEmbedLrMult;
  const wdMult = name.endsWith('.bias') || name.includes('norm') || name.includes('gamma') ? 0 : 1;
  return { layerId, lrMult, wdMult, isLastLayer: name.includes('last_layer') };
}

/**
 * Groups for the shared AdamW. `modules` maps a module prefix ('backbone', 'dino_head', 'ibot_head') to its
 * parameters (official names) and its depth (null for heads). Frozen parameters are left out.
 */
export function dinov2ParamGroups(modules: { prefix: string; params: Map<string, Variable>; depth: number | null }[], o: V2GroupOptions): V2ParamGroup[] {
  const groups = new Map<string, V2ParamGroup>();
  for (const { prefix, params, depth } of modules) {
    for (const [name, v] of params) {
      if (!v.trainable) continue;
      const m = paramMultipliers(name, depth, o);
      // One group per module and multiplier set (the official fusing is per module too).
      const key = `${prefix}|lr${m.lrMult}|wd${m.wdMult}|last${m.isLastLayer}`;
      let g = groups.get(key);
      if (!g) {
        g = { name: `${prefix}:lr_mult=${+m.lrMult.toPrecision(6)},wd_mult=${m.wdMult}${m.isLastLayer ? ',last_layer' : ''}`, params: [], lrMult: m.lrMult, wdMult: m.wdMult, isLastLayer: m.isLastLayer };
        groups.set(key, g);
      }
      g.params.push(`${prefix}.${name}`);
    }
  }
  return [...groups.values()];
}
