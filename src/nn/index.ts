// The layers of the ViT and the DINO head (PyTorch layouts, official parameter names).
export * from './module.js';
export * from './functional.js';
export * from './init.js';
export * from './containers.js';
export * from './linear.js';
export * from './norm.js';
export * from './attention.js';
export * from './ffn.js';
export * from './layer_scale.js';
export * from './drop_path.js';
export * from './patch_embed.js';
export * from './posembed.js';
export * from './block.js';
