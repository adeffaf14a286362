// Fixture kind `head`: the DINOHead of either version, loaded from every checkpoint the fixture lists; emits the
// prototype scores `out`, the MLP output `mlp_out` and `last_layer_effective_weight` (g · v / ‖v‖).
import { tf, type Tensor } from '../../backend/tf.js';
import { readStateDict, toOfficial } from '../../checkpoint/index.js';
import { DINOHead } from '../../models/dino_head.js';
import type { FixtureContext } from '../runner.js';
import { f32, type BinTensor } from '../tensor_io.js';

function bin(t: Tensor): BinTensor {
  return f32([...t.shape], t.dataSync() as Float32Array);
}

export async function headHandler(ctx: FixtureContext): Promise<void> {
  const c = (ctx.fixture.config ?? {}) as Record<string, unknown>;
  const need = (k: string) => {
    if (typeof c[k] !== 'number') throw new Error(`fixture ${ctx.name}: config.${k} must be a number`);
    return c[k] as number;
  };
  const keys = Object.keys(ctx.fixture.checkpoints ?? {}).filter((k) => ctx.checkpointPath(k));
  if (keys.length === 0) throw new Error(`fixture ${ctx.name}: no local checkpoint listed`);
  for (const key of keys) {
    const weights = toOfficial(await readStateDict(ctx.checkpointPath(key)!));
    if (!weights.head) throw new Error(`fixture ${ctx.name}: checkpoint '${key}' holds no DINO head tensors`);
    const head = new DINOHead({
      inDim: need('in_dim'),
      outDim: need('out_dim'),
      hiddenDim: need('hidden_dim'),
      bottleneckDim: need('bottleneck_dim'),
      nlayers: need('nlayers'),
      useBn: Boolean(c.use_bn ?? false),
      normLastLayer: Boolean(c.norm_last_layer ?? false),
      mlpBias: (c.mlp_bias as boolean | undefined) ?? true,
    });
    try {
      head.loadStateDict(weights.head);
      tf.tidy(() => {
        const x = ctx.input('inputs/x');
        const { mlpOut, out } = head.forwardWithMlp(tf.tensor(Float32Array.from(x.data as ArrayLike<number>), x.shape));
        ctx.emit('out', bin(out), key);
        ctx.emit('mlp_out', bin(mlpOut), key);
        ctx.emit('last_layer_effective_weight', bin(head.effectiveLastLayerWeight()), key);
      });
    } finally {
      head.dispose();
    }
  }
}
