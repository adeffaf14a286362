// Model constructors and re-exports.
import { namedConfig, type ViTConfig } from './config.js';
import { VisionTransformer, type ViTOptions } from './vit.js';

export * from './config.js';
export * from './vit.js';
export * from './dino_head.js';

/** A ViT from a config or a named config ('dinov2_vits14', 'dino_vits16', 'vit_nano_p4_28', ...), with seeded init. */
export function createViT(configOrName: ViTConfig | string, opts: ViTOptions = {}): VisionTransformer {
  const config = typeof configOrName === 'string' ? namedConfig(configOrName) : configOrName;
  return new VisionTransformer(config, opts);
}
