// Fixture kind `collate`: the deterministic part of DINOv2 collate_data_and_cast given stored masks
// (mask_indices_list, masks_weight, n_masked_patches) plus the upperbound implied by the config.
import type { FixtureContext } from '../runner.js';
import { f32, i64 } from '../tensor_io.js';
import { deriveMaskTensors, maskRatioBins } from '../../ssl/collate.js';
import { inputMask } from './ssl_io.js';

export function collateHandler(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config ?? {};
  const m = inputMask(ctx, 'inputs/collated_masks');
  const [nImages, nTokens] = m.shape as [number, number];
  if (cfg.n_tokens !== undefined && cfg.n_tokens !== nTokens) {
    throw new Error(`fixture ${ctx.name}: config.n_tokens ${cfg.n_tokens} but collated_masks has ${nTokens} tokens per image`);
  }
  const d = deriveMaskTensors({ data: m.data, shape: [nImages, nTokens] });
  const { upperbound } = maskRatioBins(nImages, nTokens, { maskRatioMinMax: cfg.mask_ratio_min_max, maskProbability: cfg.mask_sample_probability });
  ctx.emit('mask_indices_list', i64([d.maskIndices.length], d.maskIndices));
  ctx.emit('masks_weight', f32([d.masksWeight.length], d.masksWeight));
  ctx.emit('n_masked_patches', i64([1], [d.nMaskedPatches]));
  ctx.emit('upperbound', i64([], [upperbound]));
}
