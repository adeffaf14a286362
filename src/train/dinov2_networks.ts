// Student and teacher of a DINOv2 run, as the official SSLMetaArch: a ModuleDict of backbone, dino_head and (with
// ibot.separate_head) ibot_head. Parameters are named `<module>.<official name>`. The teacher has the same
// architecture without drop path and starts as a copy of the student.
import type { Variable } from '../backend/tf.js';
import { DINOHead, type DINOHeadOptions } from '../models/dino_head.js';
import { VisionTransformer } from '../models/vit.js';
import type { StateDict } from '../checkpoint/types.js';
import type { ViTConfig } from '../models/config.js';
import { v2BackboneConfig, type Dinov2Config, type HeadSection } from './dinov2_config.js';

export interface V2Network {
  backbone: VisionTransformer;
  dino_head: DINOHead;
  /** Only with ibot.separate_head; otherwise the iBOT loss uses dino_head. */
  ibot_head: DINOHead | null;
}

export const V2_MODULES = ['backbone', 'dino_head', 'ibot_head'] as const;
export type V2ModuleName = (typeof V2_MODULES)[number];

export function v2Modules(net: V2Network): [V2ModuleName, VisionTransformer | DINOHead][] {
  const out: [V2ModuleName, VisionTransformer | DINOHead][] = [['backbone', net.backbone], ['dino_head', net.dino_head]];
  if (net.ibot_head) out.push(['ibot_head', net.ibot_head]);
  return out;
}

export function v2NamedParameters(net: V2Network): Map<string, Variable> {
  return new Map(v2Modules(net).flatMap(([n, m]) => m.namedParameters(`${n}.`)));
}

export function headOptions(h: HeadSection, inDim: number, seed: number): DINOHeadOptions {
  return {
    inDim,
    outDim: h.head_n_prototypes,
    hiddenDim: h.head_hidden_dim,
    bottleneckDim: h.head_bottleneck_dim,
    nlayers: h.head_nlayers,
    useBn: h.head_use_bn,
    normLastLayer: false, // DINOv2 trains weight_g
    seed,
  };
}

/** A network from a backbone config and the head sections; `seed` fixes the init. */
export function buildV2Network(vit: ViTConfig, cfg: Pick<Dinov2Config, 'dino' | 'ibot'>, seed: number): V2Network {
  const backbone = new VisionTransformer(vit, { seed });
  const dino_head = new DINOHead(headOptions(cfg.dino, vit.embedDim, seed));
  const ibot_head = cfg.ibot.separate_head ? new DINOHead(headOptions(cfg.ibot, vit.embedDim, seed + 1)) : null;
  return { backbone, dino_head, ibot_head };
}

export function buildV2Networks(cfg: Dinov2Config): { student: V2Network; teacher: V2Network } {
  const seed = cfg.train.seed;
  return { student: buildV2Network(v2BackboneConfig(cfg, true), cfg, seed), teacher: buildV2Network(v2BackboneConfig(cfg, false), cfg, seed) };
}

export function v2State(net: V2Network): StateDict {
  const sd: StateDict = new Map();
  for (const [name, m] of v2Modules(net)) for (const [k, t] of m.stateDict()) sd.set(`${name}.${k}`, t);
  return sd;
}

export function loadV2State(net: V2Network, sd: StateDict, what: string): void {
  for (const [name, m] of v2Modules(net)) {
    const part: StateDict = new Map([...sd].filter(([k]) => k.startsWith(`${name}.`)).map(([k, t]) => [k.slice(name.length + 1), t]));
    try {
      m.loadStateDict(part);
    } catch (e) {
      throw new Error(`${what} (${name}): ${(e as Error).message}`);
    }
  }
}

export function disposeV2Network(net: V2Network): void {
  for (const [, m] of v2Modules(net)) m.dispose();
}
