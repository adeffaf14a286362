// Student and teacher of a DINO v1 run, built from a TrainConfig: ViT (+ drop path for the student) and DINOHead.
// The teacher has the same architecture without drop path and starts from the student's weights.
import { DINOHead } from '../models/dino_head.js';
import { VisionTransformer } from '../models/vit.js';
import { backboneConfig, type TrainConfig } from './config.js';
import type { DinoNetwork } from './dino_trainer.js';

export interface DinoNetworks {
  student: DinoNetwork & { backbone: VisionTransformer };
  teacher: DinoNetwork & { backbone: VisionTransformer };
}

function network(cfg: TrainConfig, dropPathRate: number, normLastLayer: boolean): DinoNetwork & { backbone: VisionTransformer } {
  const vit = { ...backboneConfig(cfg), dropPathRate };
  const backbone = new VisionTransformer(vit, { seed: cfg.seed });
  const head = new DINOHead({
    inDim: vit.embedDim,
    outDim: cfg.out_dim,
    hiddenDim: cfg.head_hidden_dim,
    bottleneckDim: cfg.head_bottleneck_dim,
    useBn: cfg.use_bn_in_head,
    normLastLayer,
    seed: cfg.seed,
  });
  return { backbone, head };
}

export function buildNetworks(cfg: TrainConfig): DinoNetworks {
  return {
    student: network(cfg, cfg.drop_path_rate, cfg.norm_last_layer),
    // The official teacher head always uses the default norm_last_layer=True; only requires_grad differs, and the
    // teacher never trains, so the flag does not change its values.
    teacher: network(cfg, 0, true),
  };
}

export function disposeNetworks(n: DinoNetworks): void {
  for (const net of [n.student, n.teacher]) {
    net.backbone.dispose();
    net.head.dispose();
  }
}
