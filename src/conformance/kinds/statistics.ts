// Fixture kind `statistics`: block-mask distribution statistics. We draw our own masks (n_draws per target, seeded)
// with the configured MaskingGenerator and emit the same statistics under `t<target>/<stat>`; the stored tolerances
// account for sampling noise.
import type { FixtureContext } from '../runner.js';
import { f32 } from '../tensor_io.js';
import { MaskingGenerator } from '../../ssl/masking.js';
import { maskStatistics, type MaskStatistics } from '../../ssl/mask_statistics.js';
import { Rng } from '../../util/rng.js';
import { configNumber } from './ssl_io.js';

const STATS: Record<string, (s: MaskStatistics) => number | Float64Array> = {
  mean_count: (s) => s.meanCount,
  std_count: (s) => s.stdCount,
  min_count: (s) => s.minCount,
  max_count: (s) => s.maxCount,
  frac_eq_target: (s) => s.fracEqTarget,
  frac_single_component: (s) => s.fracSingleComponent,
  mean_components: (s) => s.meanComponents,
  row_profile: (s) => s.rowProfile,
  col_profile: (s) => s.colProfile,
  marginal: (s) => s.marginal,
};

export function statisticsHandler(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config;
  const targets = cfg?.targets as number[] | undefined;
  const size = cfg?.input_size as [number, number] | undefined;
  if (!Array.isArray(targets) || !Array.isArray(size)) {
    throw new Error(`fixture ${ctx.name}: statistics fixtures need config.targets and config.input_size (masking generator statistics)`);
  }
  const gen = new MaskingGenerator({
    inputSize: size,
    maxNumPatches: configNumber(ctx, cfg, 'max_num_patches'),
    minNumPatches: cfg?.min_num_patches ?? 4,
    minAspect: cfg?.min_aspect ?? 0.3,
    maxAspect: cfg?.max_aspect,
  });
  const nDraws = configNumber(ctx, cfg, 'n_draws');
  const stats = ctx.fixture.tensors.filter((t) => ctx.manifest.tensors[t]?.role === 'stat').map((t) => t.slice(ctx.name.length + 1));
  for (const target of targets) {
    const s = maskStatistics(gen, target, nDraws, new Rng([20240607, target]));
    for (const name of stats.filter((n) => n.startsWith(`t${target}/`))) {
      const stat = name.slice(name.indexOf('/') + 1);
      const get = STATS[stat];
      if (!get) throw new Error(`fixture ${ctx.name}: unknown statistic '${stat}' (known: ${Object.keys(STATS).join(', ')})`);
      const v = get(s);
      ctx.emit(name, typeof v === 'number' ? f32([], [v]) : f32(ctx.entry(name).shape, v));
    }
  }
}
