// Model FLOPs of a ViT forward pass (2 FLOPs per multiply-add, matmuls and attention only), for GFLOP/s figures.
import type { ViTConfig } from '../src/models/config.js';

export function vitForwardFlops(c: ViTConfig, batch: number): number {
  const D = c.embedDim, grid = Math.floor(c.imgSize / c.patchSize);
  const N = grid * grid, T = N + 1 + c.numRegisterTokens, H = D * c.mlpRatio;
  const patch = 2 * N * (c.inChans * c.patchSize * c.patchSize) * D;
  const block = 2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * H;
  return batch * (patch + c.depth * block);
}

/** Forward + backward ≈ 3× forward (each matmul has two gradient matmuls). */
export const trainStepFlops = (c: ViTConfig, batch: number) => 3 * vitForwardFlops(c, batch);
