// Fixture kinds `dinov2_backbone` and `dino_backbone`: build the ViT from the fixture's official config, load every
// checkpoint the fixture lists (the official .pth and the HF .safetensors; the variant is the checkpoint key) and
// emit each documented call for every input `inputs/<name>` as `<name>/<call>/...`; `masked/...` runs
// forward_features on inputs/square with inputs/masks.
import { tf, type Tensor } from '../../backend/tf.js';
import { readStateDict, toOfficial } from '../../checkpoint/index.js';
import { configFromOfficial } from '../../models/official_config.js';
import { VisionTransformer } from '../../models/vit.js';
import type { FixtureContext } from '../runner.js';
import { f32, type BinTensor } from '../tensor_io.js';

function bin(t: Tensor): BinTensor {
  return f32([...t.shape], t.dataSync() as Float32Array);
}

function inputNames(ctx: FixtureContext): string[] {
  const prefix = `${ctx.name}/inputs/`;
  return ctx.fixture.tensors.filter((t) => t.startsWith(prefix) && t !== `${prefix}masks`).map((t) => t.slice(prefix.length));
}

function toTensor(ctx: FixtureContext, name: string): Tensor {
  const t = ctx.input(name);
  return tf.tensor(Float32Array.from(t.data as ArrayLike<number>), t.shape, 'float32');
}

/** The model of the fixture with the weights of one of its checkpoints. */
async function loadModel(ctx: FixtureContext, family: 'dino' | 'dinov2', key: string): Promise<VisionTransformer> {
  const path = ctx.checkpointPath(key);
  if (!path) throw new Error(`fixture ${ctx.name}: checkpoint '${key}' is external or missing`);
  const weights = toOfficial(await readStateDict(path));
  const model = new VisionTransformer(configFromOfficial(ctx.fixture.config ?? {}, family));
  model.loadStateDict(weights.stateDict);
  return model;
}

function checkpointKeys(ctx: FixtureContext): string[] {
  const keys = Object.keys(ctx.fixture.checkpoints ?? {}).filter((k) => ctx.checkpointPath(k));
  if (keys.length === 0) throw new Error(`fixture ${ctx.name}: no local checkpoint listed`);
  return keys;
}

function emitForwardFeatures(ctx: FixtureContext, model: VisionTransformer, x: Tensor, prefix: string, variant: string, masks?: Tensor): void {
  tf.tidy(() => {
    const f = model.forwardFeatures(x, masks);
    ctx.emit(`${prefix}/forward_features/x_norm_clstoken`, bin(f.clsToken), variant);
    ctx.emit(`${prefix}/forward_features/x_norm_regtokens`, bin(f.regTokens), variant);
    ctx.emit(`${prefix}/forward_features/x_norm_patchtokens`, bin(f.patchTokens), variant);
    ctx.emit(`${prefix}/forward_features/x_prenorm`, bin(f.prenorm), variant);
  });
}

export async function dinov2BackboneHandler(ctx: FixtureContext): Promise<void> {
  for (const key of checkpointKeys(ctx)) {
    const model = await loadModel(ctx, 'dinov2', key);
    try {
      for (const name of inputNames(ctx)) {
        tf.tidy(() => {
          const x = toTensor(ctx, `inputs/${name}`);
          emitForwardFeatures(ctx, model, x, name, key);
          for (const reshape of [false, true]) {
            const layers = model.getIntermediateLayers(x, 2, { reshape, returnClassToken: true, norm: true });
            layers.forEach(([patch, cls], i) => {
              ctx.emit(`${name}/gil_n2_${reshape ? 'reshape' : 'flat'}/${i}/patch`, bin(patch), key);
              ctx.emit(`${name}/gil_n2_${reshape ? 'reshape' : 'flat'}/${i}/cls`, bin(cls), key);
            });
          }
          const [first] = model.getIntermediateLayers(x, [0], { norm: false });
          ctx.emit(`${name}/gil_idx0_nonorm/0/patch`, bin(first!), key);
        });
      }
      if (ctx.has('inputs/masks') && ctx.has('inputs/square')) {
        tf.tidy(() => {
          const m = ctx.input('inputs/masks');
          const masks = tf.tensor(Int32Array.from(m.data as ArrayLike<number | bigint>, Number), m.shape, 'int32');
          emitForwardFeatures(ctx, model, toTensor(ctx, 'inputs/square'), 'masked', key, masks);
        });
      }
    } finally {
      model.dispose();
    }
  }
}

export async function dinoBackboneHandler(ctx: FixtureContext): Promise<void> {
  for (const key of checkpointKeys(ctx)) {
    const model = await loadModel(ctx, 'dino', key);
    try {
      for (const name of inputNames(ctx)) {
        tf.tidy(() => {
          const x = toTensor(ctx, `inputs/${name}`);
          ctx.emit(`${name}/forward`, bin(model.forward(x)), key);
          ctx.emit(`${name}/last_selfattention`, bin(model.getLastSelfAttention(x)), key);
          model.getIntermediateLayers(x, 2).forEach((t, i) => ctx.emit(`${name}/gil_n2/${i}`, bin(t), key));
        });
      }
    } finally {
      model.dispose();
    }
  }
}
