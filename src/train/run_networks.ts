// The networks of a run, for every recipe: student and EMA teacher (DINO, DINOv2), or a frozen pretrained teacher,
// the student and the student's EMA (distillation). Built the same way in the training thread and in each
// data-parallel replica.
import type { StateDict } from '../checkpoint/types.js';
import { backboneConfig, type SSLConfig } from './config.js';
import { distillNetworks } from './distill.js';
import { buildNetworks, disposeNetwork, type SSLNetwork } from './networks.js';

/** The networks of a run: self-distillation (student + EMA teacher) or distillation (frozen teacher + student EMA). */
export interface RunNetworks {
  student: SSLNetwork;
  teacher: SSLNetwork;
  ema?: SSLNetwork;
  /** The student's global-crop side (differs from the teacher's when distilling across patch sizes). */
  studentGlobalSize: number;
  /** Loss state (centers) to start from, e.g. a distillation teacher's trained centers. */
  initialLossState?: StateDict;
  describe: string;
}

export async function buildRunNetworks(cfg: SSLConfig, log: (s: string) => void): Promise<{ cfg: SSLConfig; nets: RunNetworks }> {
  if (cfg.distill.teacher !== null) {
    const d = await distillNetworks(cfg, log);
    return { cfg: d.cfg, nets: d };
  }
  const v = backboneConfig(cfg);
  const detail = cfg.recipe === 'dinov2' ? `, ${v.numRegisterTokens} registers, LayerScale ${v.initValues}` : '';
  return {
    cfg,
    nets: { ...buildNetworks(cfg), studentGlobalSize: cfg.crops.global_crops_size, describe: `${cfg.student.arch} (${v.embedDim}-d, depth ${v.depth}, patch ${v.patchSize}${detail})` },
  };
}

export function disposeRunNetworks(n: RunNetworks): void {
  for (const net of [n.student, n.teacher, n.ema]) if (net) disposeNetwork(net);
}
