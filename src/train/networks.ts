// Student and teacher networks, for every recipe: a backbone, a DINO head and (with ibot.separate_head) an iBOT head.
// Parameters and checkpoint keys are `<module>.<official name>`: the DINO head is `head` in a DINO (v1) run, as the
// official MultiCropWrapper, and `dino_head` in a DINOv2 run, as SSLMetaArch. The teacher has the student's
// architecture without drop path and starts as a copy of the student.
import type { Variable } from '../backend/tf.js';
import { subStateDict } from '../checkpoint/prefix.js';
import type { StateDict } from '../checkpoint/types.js';
import type { ViTConfig } from '../models/config.js';
import { DINOHead, type DINOHeadOptions } from '../models/dino_head.js';
import { VisionTransformer } from '../models/vit.js';
import { backboneConfig, type HeadSection, type SSLConfig } from './config.js';

export interface SSLNetwork {
  backbone: VisionTransformer;
  dino_head: DINOHead;
  /** Only with ibot.separate_head; otherwise the iBOT loss uses dino_head. */
  ibot_head: DINOHead | null;
  /** The DINO head's module name: 'head' (v1 MultiCropWrapper) or 'dino_head' (v2 SSLMetaArch). */
  dinoHeadName: 'head' | 'dino_head';
}

export type Module = VisionTransformer | DINOHead;

/** [module name, module] pairs: backbone, the DINO head, the iBOT head when separate. */
export function networkModules(net: SSLNetwork): [string, Module][] {
  const out: [string, Module][] = [['backbone', net.backbone], [net.dinoHeadName, net.dino_head]];
  if (net.ibot_head) out.push(['ibot_head', net.ibot_head]);
  return out;
}

export function namedParameters(net: SSLNetwork): Map<string, Variable> {
  return new Map(networkModules(net).flatMap(([n, m]) => m.namedParameters(`${n}.`)));
}

export function headOptions(h: HeadSection, inDim: number, seed: number): DINOHeadOptions {
  return {
    inDim,
    outDim: h.head_n_prototypes,
    hiddenDim: h.head_hidden_dim,
    bottleneckDim: h.head_bottleneck_dim,
    nlayers: h.head_nlayers,
    useBn: h.head_use_bn,
    normLastLayer: h.head_norm_last_layer,
    seed,
  };
}

/** A network from a backbone config and the head sections; `seed` fixes the init. */
export function buildNetwork(vit: ViTConfig, cfg: Pick<SSLConfig, 'recipe' | 'dino' | 'ibot'> & { student?: Pick<SSLConfig['student'], 'pos_embed_init'> }, seed: number): SSLNetwork {
  return {
    backbone: new VisionTransformer(vit, { seed, posEmbedInit: cfg.student?.pos_embed_init }),
    dino_head: new DINOHead(headOptions(cfg.dino, vit.embedDim, seed)),
    ibot_head: cfg.ibot.separate_head ? new DINOHead(headOptions(cfg.ibot, vit.embedDim, seed + 1)) : null,
    dinoHeadName: cfg.recipe === 'dino' ? 'head' : 'dino_head',
  };
}

/** Student (with drop path) and teacher (without) of a self-distillation run. */
export function buildNetworks(cfg: SSLConfig): { student: SSLNetwork; teacher: SSLNetwork } {
  const seed = cfg.train.seed;
  return { student: buildNetwork(backboneConfig(cfg, true), cfg, seed), teacher: buildNetwork(backboneConfig(cfg, false), cfg, seed) };
}

export function networkState(net: SSLNetwork): StateDict {
  const sd: StateDict = new Map();
  for (const [name, m] of networkModules(net)) for (const [k, t] of m.stateDict()) sd.set(`${name}.${k}`, t);
  return sd;
}

/** Loads every module from `sd` (keys `<module>.<name>`); errors name `what` and the module. */
export function loadNetworkState(net: SSLNetwork, sd: StateDict, what: string): void {
  for (const [name, m] of networkModules(net)) {
    try {
      m.loadStateDict(subStateDict(sd, `${name}.`));
    } catch (e) {
      throw new Error(`${what} (${name}): ${(e as Error).message}`);
    }
  }
}

export function parameterCount(net: SSLNetwork): number {
  return networkModules(net).reduce((s, [, m]) => s + m.numParameters(), 0);
}

export function disposeNetwork(net: SSLNetwork): void {
  for (const [, m] of networkModules(net)) m.dispose();
}
