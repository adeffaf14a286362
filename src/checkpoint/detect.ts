// ViTConfig from the tensors of an official-named state dict, plus the expected key → shape table of a config, used
// to report exactly which keys are missing, unexpected or mis-shaped when a checkpoint and a config disagree.
// Heads cannot be read from shapes: released models use 64-dim heads (numHeads = D/64); anything else needs
// `numHeads`, a JSON config in the safetensors metadata, or a config file next to the checkpoint.
import type { ViTConfig } from '../models/config.js';
import type { DINOHeadOptions } from '../models/dino_head.js';
import type { Naming } from './keymap.js';
import type { StateDict } from './types.js';

export interface DetectOptions {
  numHeads?: number;
  /** Settings read from the file (safetensors metadata, `<file>.json`, HF `config.json`); shapes still win on sizes. */
  fileConfig?: Partial<ViTConfig>;
  /** Settings the caller asks for; applied last, then checked against the tensors. */
  config?: Partial<ViTConfig>;
  naming?: Naming;
  source?: string;
}

/** SwiGLUFFNFused's hidden width for an MLP ratio (official: int(D*ratio*2/3) rounded up to a multiple of 8). */
export function swigluHidden(embedDim: number, mlpRatio: number): number {
  return Math.floor((Math.floor(embedDim * mlpRatio * (2 / 3)) + 7) / 8) * 8;
}

function shapeOf(sd: StateDict, key: string, source: string): number[] {
  const t = sd.get(key);
  if (!t) throw new Error(`${source}: cannot detect the model config: tensor '${key}' is missing (not a ViT backbone checkpoint?)`);
  return t.shape;
}

export function detectConfig(sd: StateDict, opts: DetectOptions = {}): ViTConfig {
  const src = opts.source ?? 'checkpoint';
  const pw = shapeOf(sd, 'patch_embed.proj.weight', src);
  if (pw.length !== 4 || pw[2] !== pw[3]) throw new Error(`${src}: patch_embed.proj.weight has shape [${pw}], expected [D, C, p, p]`);
  const [embedDim, inChans, patchSize] = pw as [number, number, number];
  let depth = 0;
  while (sd.has(`blocks.${depth}.norm1.weight`)) depth++;
  if (depth === 0) throw new Error(`${src}: no blocks.<i>.norm1.weight tensors: not a ViT backbone`);
  const pos = shapeOf(sd, 'pos_embed', src);
  const grid = Math.round(Math.sqrt(pos[1]! - 1));
  if (grid * grid !== pos[1]! - 1) throw new Error(`${src}: pos_embed [${pos}] does not hold 1 + a square number of patch positions`);
  const numRegisterTokens = sd.get('register_tokens')?.shape[1] ?? 0;
  const layerScale = sd.has('blocks.0.ls1.gamma');
  const swiglu = sd.has('blocks.0.mlp.w12.weight');
  const family = sd.has('mask_token') || numRegisterTokens > 0 || layerScale || swiglu ? 'dinov2' : 'dino';

  let mlpRatio: number;
  if (swiglu) {
    const hidden = shapeOf(sd, 'blocks.0.mlp.w12.weight', src)[0]! / 2;
    const guess = (hidden * 3) / 2 / embedDim;
    const r = [4, 2, 3, 8, guess].find((x) => swigluHidden(embedDim, x) === hidden);
    if (r === undefined) throw new Error(`${src}: SwiGLU hidden width ${hidden} matches no MLP ratio for D=${embedDim}`);
    mlpRatio = r;
  } else mlpRatio = shapeOf(sd, 'blocks.0.mlp.fc1.weight', src)[0]! / embedDim;

  const fromShapes: ViTConfig = {
    family,
    imgSize: grid * patchSize,
    patchSize,
    inChans,
    embedDim,
    depth,
    numHeads: embedDim % 64 === 0 ? embedDim / 64 : 0,
    mlpRatio,
    qkvBias: sd.has('blocks.0.attn.qkv.bias'),
    projBias: sd.has('blocks.0.attn.proj.bias'),
    ffnBias: sd.has(swiglu ? 'blocks.0.mlp.w12.bias' : 'blocks.0.mlp.fc1.bias'),
    ffnLayer: swiglu ? 'swiglufused' : 'mlp',
    initValues: layerScale ? 1.0 : null,
    numRegisterTokens,
    posEmbedInterpolation: numRegisterTokens > 0 ? 'size_antialias' : 'scale_factor',
    interpolateOffset: numRegisterTokens > 0 ? 0 : 0.1,
    // HF ViTModel ports of DINO v1 use 1e-12 (their config.json); everything official uses 1e-6.
    layerNormEps: opts.naming === 'hf-vit' ? 1e-12 : 1e-6,
    dropPathRate: 0,
    dropPathUniform: family === 'dinov2',
  };
  // Shape-derived sizes win over a file config, the caller's config wins over both (and is then checked).
  const sizeKeys = ['imgSize', 'patchSize', 'inChans', 'embedDim', 'depth', 'ffnLayer', 'numRegisterTokens', 'qkvBias', 'projBias', 'ffnBias'] as const;
  const file = { ...opts.fileConfig };
  for (const k of sizeKeys) delete file[k];
  if (file.initValues !== undefined && (file.initValues === null) !== !layerScale) delete file.initValues;
  const config: ViTConfig = { ...fromShapes, ...file, ...opts.config };
  if (opts.numHeads !== undefined) config.numHeads = opts.numHeads;
  if (!Number.isInteger(config.numHeads) || config.numHeads <= 0 || config.embedDim % config.numHeads !== 0)
    throw new Error(
      config.numHeads === 0
        ? `${src}: embed dim ${embedDim} is not a multiple of 64, so the number of heads cannot be inferred; pass --num-heads N ` +
            `(numHeads), or put a config next to the checkpoint ('<file>.json' with {"numHeads": N}, or HF 'config.json' with num_attention_heads)`
        : `${src}: numHeads ${config.numHeads} does not divide embed dim ${config.embedDim}`,
    );
  checkStateDict(sd, config, src);
  return config;
}

/** Official key → shape for a config, in the official order. */
export function expectedShapes(c: ViTConfig): Map<string, number[]> {
  const D = c.embedDim;
  const m = new Map<string, number[]>();
  const grid = c.imgSize / c.patchSize;
  m.set('cls_token', [1, 1, D]);
  m.set('pos_embed', [1, grid * grid + 1, D]);
  if (c.numRegisterTokens > 0) m.set('register_tokens', [1, c.numRegisterTokens, D]);
  if (c.family === 'dinov2') m.set('mask_token', [1, D]);
  m.set('patch_embed.proj.weight', [D, c.inChans, c.patchSize, c.patchSize]);
  m.set('patch_embed.proj.bias', [D]);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}.`;
    m.set(`${b}norm1.weight`, [D]);
    m.set(`${b}norm1.bias`, [D]);
    m.set(`${b}attn.qkv.weight`, [3 * D, D]);
    if (c.qkvBias) m.set(`${b}attn.qkv.bias`, [3 * D]);
    m.set(`${b}attn.proj.weight`, [D, D]);
    if (c.projBias) m.set(`${b}attn.proj.bias`, [D]);
    if (c.initValues !== null) m.set(`${b}ls1.gamma`, [D]);
    m.set(`${b}norm2.weight`, [D]);
    m.set(`${b}norm2.bias`, [D]);
    if (c.ffnLayer === 'mlp') {
      const H = Math.round(D * c.mlpRatio);
      m.set(`${b}mlp.fc1.weight`, [H, D]);
      if (c.ffnBias) m.set(`${b}mlp.fc1.bias`, [H]);
      m.set(`${b}mlp.fc2.weight`, [D, H]);
      if (c.ffnBias) m.set(`${b}mlp.fc2.bias`, [D]);
    } else {
      const H = swigluHidden(D, c.mlpRatio);
      m.set(`${b}mlp.w12.weight`, [2 * H, D]);
      if (c.ffnBias) m.set(`${b}mlp.w12.bias`, [2 * H]);
      m.set(`${b}mlp.w3.weight`, [D, H]);
      if (c.ffnBias) m.set(`${b}mlp.w3.bias`, [D]);
    }
    if (c.initValues !== null) m.set(`${b}ls2.gamma`, [D]);
  }
  m.set('norm.weight', [D]);
  m.set('norm.bias', [D]);
  return m;
}

/** Throws an error listing missing, unexpected and mis-shaped keys when `sd` does not fit `config`. */
export function checkStateDict(sd: StateDict, config: ViTConfig, source = 'checkpoint'): void {
  const want = expectedShapes(config);
  const missing = [...want.keys()].filter((k) => !sd.has(k));
  const unexpected = [...sd.keys()].filter((k) => !want.has(k));
  const shapes = [...want].filter(([k, s]) => sd.has(k) && sd.get(k)!.shape.join() !== s.join()).map(([k, s]) => `${k}: file [${sd.get(k)!.shape}] vs config [${s}]`);
  if (!missing.length && !unexpected.length && !shapes.length) return;
  const list = (xs: string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(', ')}, ... (${xs.length} in all)` : xs.join(', '));
  const parts = [
    missing.length && `missing keys: ${list(missing)}`,
    unexpected.length && `unexpected keys: ${list(unexpected)}`,
    shapes.length && `shape mismatches: ${list(shapes)}`,
  ].filter(Boolean);
  throw new Error(`${source}: checkpoint does not match the model config (${config.family}, D=${config.embedDim}, depth ${config.depth}):\n  ${parts.join('\n  ')}`);
}

/** Reads a config JSON: our own ViTConfig (or part of one) or a HuggingFace config.json. */
export function parseConfigJson(obj: unknown, source = 'config'): Partial<ViTConfig> {
  if (typeof obj !== 'object' || obj === null) throw new Error(`${source}: config must be a JSON object`);
  const o = obj as Record<string, unknown>;
  if (!('hidden_size' in o) && !('num_attention_heads' in o) && !('model_type' in o)) return o as Partial<ViTConfig>;
  // HuggingFace config.json
  const c: Partial<ViTConfig> = {};
  const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const set = <K extends keyof ViTConfig>(k: K, v: ViTConfig[K] | undefined) => {
    if (v !== undefined) c[k] = v;
  };
  set('embedDim', num('hidden_size'));
  set('depth', num('num_hidden_layers'));
  set('numHeads', num('num_attention_heads'));
  set('patchSize', num('patch_size'));
  set('imgSize', num('image_size'));
  set('inChans', num('num_channels'));
  set('layerNormEps', num('layer_norm_eps'));
  set('dropPathRate', num('drop_path_rate'));
  set('numRegisterTokens', num('num_register_tokens'));
  if (typeof o.qkv_bias === 'boolean') c.qkvBias = o.qkv_bias;
  const type = String(o.model_type ?? '');
  if (type.startsWith('dinov2')) {
    c.family = 'dinov2';
    set('mlpRatio', num('mlp_ratio'));
    if (typeof o.use_swiglu_ffn === 'boolean') c.ffnLayer = o.use_swiglu_ffn ? 'swiglufused' : 'mlp';
  } else if (type === 'vit') {
    c.family = 'dino';
    const inter = num('intermediate_size');
    if (inter && c.embedDim) c.mlpRatio = inter / c.embedDim;
  }
  return c;
}

/** DINOHead sizes from its official-named tensors (mlp.<i>.weight, last_layer.weight_g / weight_v). */
export function detectHeadOptions(head: StateDict, source = 'checkpoint'): DINOHeadOptions {
  const v = head.get('last_layer.weight_v');
  if (!v || v.shape.length !== 2) throw new Error(`${source}: DINO head has no last_layer.weight_v [K, bottleneck]`);
  const linears = [...head]
    .filter(([k, t]) => /^mlp\.(\d+\.)?weight$/.test(k) && t.shape.length === 2)
    .map(([k, t]) => ({ i: Number(/^mlp\.(\d+)\./.exec(k)?.[1] ?? 0), shape: t.shape }))
    .sort((a, b) => a.i - b.i);
  if (!linears.length) throw new Error(`${source}: DINO head has no mlp Linear weights`);
  return {
    inDim: linears[0]!.shape[1]!,
    hiddenDim: linears.length > 1 ? linears[0]!.shape[0]! : undefined,
    bottleneckDim: v.shape[1]!,
    outDim: v.shape[0]!,
    nlayers: linears.length,
    useBn: [...head.keys()].some((k) => k.endsWith('.running_mean')),
    mlpBias: head.has(linears.length > 1 ? 'mlp.0.bias' : 'mlp.bias'),
  };
}
