// Key mapping between the checkpoint namings in the wild and the official backbone names (dino-reference.md §3a-3c):
// official v1/v2 hub files, DINO v1 full/training checkpoints (module./backbone./head.), DINOv2 training checkpoints
// with chunked blocks, HF Dinov2Model / Dinov2WithRegistersModel and HF ViTModel ports of DINO v1.
import type { ViTConfig } from '../models/config.js';
import type { HostTensor, StateDict } from './types.js';

export type Naming = 'official' | 'hf-dinov2' | 'hf-dinov2-registers' | 'hf-vit' | 'training';

export interface OfficialWeights {
  /** null when the file holds only a head. */
  family: 'dino' | 'dinov2' | null;
  naming: Naming;
  /** Backbone tensors under official names (empty for a head-only file). */
  stateDict: StateDict;
  /** DINOHead tensors under official names (mlp.0.weight, last_layer.weight_g, ...), when present. */
  head?: StateDict;
  /** Keys that are neither backbone nor DINO head (classifier, pooler, iBOT head, ...). */
  ignored: string[];
  /** What the mapping did that a user may want to know. */
  notes: string[];
}

const HEAD_KEY = /^(mlp\.|last_layer\.)/;

/** Official DINOHead names; accepts both weight-norm spellings (weight_g/v and parametrizations original0/1). */
function normalizeHeadKey(k: string): string {
  return k.replace('last_layer.parametrizations.weight.original0', 'last_layer.weight_g').replace('last_layer.parametrizations.weight.original1', 'last_layer.weight_v');
}

function stripAll(sd: StateDict, prefix: string): StateDict {
  if (sd.size === 0 || ![...sd.keys()].every((k) => k.startsWith(prefix))) return sd;
  return new Map([...sd].map(([k, v]) => [k.slice(prefix.length), v]));
}

function isHf(keys: string[]): boolean {
  return keys.some((k) => k.startsWith('embeddings.') || k.startsWith('encoder.layer.'));
}

function concatRows(parts: HostTensor[], name: string): HostTensor {
  const first = parts[0]!;
  for (const p of parts)
    if (p.dtype !== first.dtype || p.shape.slice(1).join() !== first.shape.slice(1).join())
      throw new Error(`cannot fuse query/key/value into '${name}': shapes ${parts.map((x) => `[${x.shape}]`).join(', ')} differ`);
  const total = parts.reduce((s, p) => s + p.data.length, 0);
  const data = new (first.data.constructor as new (n: number) => Float32Array)(total);
  let o = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array, o);
    o += p.data.length;
  }
  const t: HostTensor = { dtype: first.dtype, shape: [parts.reduce((s, p) => s + p.shape[0]!, 0), ...first.shape.slice(1)], data };
  if (first.sourceDtype) t.sourceDtype = first.sourceDtype;
  return t;
}

function splitRows(t: HostTensor, parts: number): HostTensor[] {
  const rows = t.shape[0]!;
  if (rows % parts) throw new Error(`cannot split a [${t.shape}] tensor into ${parts} equal row blocks`);
  const per = t.data.length / parts;
  return Array.from({ length: parts }, (_, i) => {
    const out: HostTensor = { dtype: t.dtype, shape: [rows / parts, ...t.shape.slice(1)], data: t.data.slice(i * per, (i + 1) * per) as HostTensor['data'] };
    if (t.sourceDtype) out.sourceDtype = t.sourceDtype;
    return out;
  });
}

// HF → official renames inside encoder.layer.<i>. (order matters: the more specific 'attention.output.dense' first)
const HF_LAYER_RENAMES: [string, string][] = [
  ['attention.output.dense.', 'attn.proj.'],
  ['layer_scale1.lambda1', 'ls1.gamma'],
  ['layer_scale2.lambda1', 'ls2.gamma'],
  ['mlp.weights_in.', 'mlp.w12.'],
  ['mlp.weights_out.', 'mlp.w3.'],
  ['mlp.fc1.', 'mlp.fc1.'],
  ['mlp.fc2.', 'mlp.fc2.'],
  ['norm1.', 'norm1.'],
  ['norm2.', 'norm2.'],
  // ViTModel (DINO v1 ports)
  ['layernorm_before.', 'norm1.'],
  ['layernorm_after.', 'norm2.'],
  ['intermediate.dense.', 'mlp.fc1.'],
  ['output.dense.', 'mlp.fc2.'],
];
const HF_TOP_RENAMES: Record<string, string> = {
  'embeddings.cls_token': 'cls_token',
  'embeddings.mask_token': 'mask_token',
  'embeddings.position_embeddings': 'pos_embed',
  'embeddings.register_tokens': 'register_tokens',
  'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
  'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
  'layernorm.weight': 'norm.weight',
  'layernorm.bias': 'norm.bias',
};

function hfToOfficial(sd: StateDict, out: OfficialWeights, keepIdentityLayerScale: boolean): void {
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', HostTensor>>>();
  const mapped: [string, HostTensor][] = [];
  for (const [k, v] of sd) {
    const top = HF_TOP_RENAMES[k];
    if (top) {
      // HF keeps mask_token as [1, D] like the official model; normalize a [1, 1, D] spelling too.
      mapped.push([top, top === 'mask_token' && v.shape.length === 3 ? { ...v, shape: [1, v.shape[2]!] } : v]);
      continue;
    }
    const m = /^encoder\.layer\.(\d+)\.(.*)$/.exec(k);
    if (!m) {
      out.ignored.push(k);
      continue;
    }
    const [, i, rest] = m as unknown as [string, string, string];
    const a = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(rest);
    if (a) {
      const slot = `blocks.${i}.attn.qkv.${a[2]}`;
      if (!qkv.has(slot)) {
        qkv.set(slot, {});
        mapped.push([slot, null as unknown as HostTensor]); // placeholder keeps the official order
      }
      qkv.get(slot)![a[1] as 'query'] = v;
      continue;
    }
    const r = HF_LAYER_RENAMES.find(([from]) => rest.startsWith(from));
    if (!r) {
      out.ignored.push(k);
      continue;
    }
    mapped.push([`blocks.${i}.${r[1]}${rest.slice(r[0].length)}`, v]);
  }
  for (const [name, v] of mapped) {
    if (v) {
      out.stateDict.set(name, v);
      continue;
    }
    const parts = qkv.get(name)!;
    if (!parts.query || !parts.key || !parts.value) throw new Error(`HF checkpoint lacks query, key or value for '${name}'`);
    out.stateDict.set(name, concatRows([parts.query, parts.key, parts.value], name));
  }
  out.notes.push('fused HF query/key/value into qkv rows [q; k; v]');
  // HF Dinov2Layer always has a LayerScale; an all-ones one (synthesized when converting a model without LayerScale)
  // is the identity, so drop it to get the official model back.
  const ls = [...out.stateDict.keys()].filter((k) => /\.ls[12]\.gamma$/.test(k));
  if (!keepIdentityLayerScale && ls.length && ls.every((k) => (out.stateDict.get(k)!.data as Float32Array).every((x) => x === 1))) {
    for (const k of ls) out.stateDict.delete(k);
    out.notes.push('dropped all-ones layer_scale (identity; the official model has no LayerScale)');
  }
}

/** Maps any supported naming to official backbone names (+ official DINOHead names). */
export function toOfficial(input: StateDict, opts: { keepIdentityLayerScale?: boolean } = {}): OfficialWeights {
  let sd = stripAll(stripAll(input, 'module.'), '_orig_mod.');
  const keys = [...sd.keys()];
  const out: OfficialWeights = { family: null, naming: 'official', stateDict: new Map(), ignored: [], notes: [] };
  const head: StateDict = new Map();

  if (keys.some((k) => k.startsWith('backbone.'))) {
    out.naming = 'training';
    const backbone: StateDict = new Map();
    for (const [k, v] of sd) {
      if (k.startsWith('backbone.')) backbone.set(k.slice('backbone.'.length), v);
      else if (k.startsWith('head.')) head.set(normalizeHeadKey(k.slice('head.'.length)), v);
      else if (k.startsWith('dino_head.')) head.set(normalizeHeadKey(k.slice('dino_head.'.length)), v);
      else out.ignored.push(k);
    }
    sd = backbone;
  }

  const hfPrefix = ['dinov2.', 'vit.'].find((p) => [...sd.keys()].some((k) => k.startsWith(`${p}embeddings.`)));
  const rest: StateDict = new Map();
  if (hfPrefix || isHf([...sd.keys()])) {
    const hf: StateDict = new Map();
    for (const [k, v] of sd) {
      const kk = hfPrefix && k.startsWith(hfPrefix) ? k.slice(hfPrefix.length) : k;
      if (kk.startsWith('embeddings.') || kk.startsWith('encoder.') || kk.startsWith('layernorm.')) hf.set(kk, v);
      else out.ignored.push(k); // classifier.*, pooler.*
    }
    out.naming = [...hf.keys()].some((k) => k.includes('.layernorm_before.'))
      ? 'hf-vit'
      : hf.has('embeddings.register_tokens')
        ? 'hf-dinov2-registers'
        : 'hf-dinov2';
    hfToOfficial(hf, out, opts.keepIdentityLayerScale ?? false);
  } else {
    let chunked = false;
    for (const [k, v] of sd) {
      if (HEAD_KEY.test(k)) {
        head.set(normalizeHeadKey(k), v);
        continue;
      }
      // DINOv2 training with block_chunks: blocks.<chunk>.<global index>.* → blocks.<global index>.*
      const c = /^blocks\.\d+\.(\d+)\.(.*)$/.exec(k);
      if (c) chunked = true;
      const name = c ? `blocks.${c[1]}.${c[2]}` : k;
      if (/^(cls_token|pos_embed|mask_token|register_tokens|patch_embed\.|blocks\.\d+\.|norm\.)/.test(name)) rest.set(name, v);
      else out.ignored.push(k);
    }
    if (chunked) out.notes.push('unchunked blocks.<chunk>.<i>. → blocks.<i>.');
    out.stateDict = rest;
  }

  if (head.size) out.head = head;
  const official = out.stateDict;
  if (official.size) {
    const v2 =
      official.has('mask_token') || official.has('register_tokens') || [...official.keys()].some((k) => /\.(ls1\.gamma|mlp\.w12\.weight)$/.test(k));
    out.family = v2 ? 'dinov2' : 'dino';
  }
  if (!official.size && !head.size) throw new Error(`no backbone or DINO head tensors recognized; first keys: ${keys.slice(0, 8).join(', ')}`);
  return out;
}

function ones(n: number): HostTensor {
  return { dtype: 'float32', shape: [n], data: new Float32Array(n).fill(1) };
}

/**
 * Official backbone names → HF names: ViTModel for DINO v1, Dinov2Model / Dinov2WithRegistersModel for DINOv2
 * (an all-ones LayerScale is added when the model has none, since HF layers always have one).
 */
export function fromOfficial(sd: StateDict, config: ViTConfig, naming: 'official' | 'hf'): StateDict {
  if (naming === 'official') return new Map(sd);
  const vit = config.family === 'dino';
  const out: StateDict = new Map();
  const top = Object.fromEntries(Object.entries(HF_TOP_RENAMES).map(([h, o]) => [o, h])) as Record<string, string>;
  for (const [k, v] of sd) {
    if (top[k]) {
      if (vit && k === 'mask_token') continue;
      out.set(top[k]!, v);
      continue;
    }
    const m = /^blocks\.(\d+)\.(.*)$/.exec(k);
    if (!m) throw new Error(`fromOfficial: unexpected key '${k}'`);
    const [, i, rest] = m as unknown as [string, string, string];
    const L = `encoder.layer.${i}.`;
    const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest);
    if (qkv) {
      const [q, kk, vv] = splitRows(v, 3);
      out.set(`${L}attention.attention.query.${qkv[1]}`, q!);
      out.set(`${L}attention.attention.key.${qkv[1]}`, kk!);
      out.set(`${L}attention.attention.value.${qkv[1]}`, vv!);
      continue;
    }
    const renames: [string, string][] = vit
      ? [
          ['norm1.', 'layernorm_before.'],
          ['norm2.', 'layernorm_after.'],
          ['attn.proj.', 'attention.output.dense.'],
          ['mlp.fc1.', 'intermediate.dense.'],
          ['mlp.fc2.', 'output.dense.'],
        ]
      : [
          ['norm1.', 'norm1.'],
          ['norm2.', 'norm2.'],
          ['attn.proj.', 'attention.output.dense.'],
          ['ls1.gamma', 'layer_scale1.lambda1'],
          ['ls2.gamma', 'layer_scale2.lambda1'],
          ['mlp.w12.', 'mlp.weights_in.'],
          ['mlp.w3.', 'mlp.weights_out.'],
          ['mlp.fc1.', 'mlp.fc1.'],
          ['mlp.fc2.', 'mlp.fc2.'],
        ];
    const r = renames.find(([from]) => rest.startsWith(from));
    if (!r) throw new Error(`fromOfficial: no ${vit ? 'ViTModel' : 'Dinov2Model'} name for '${k}'`);
    out.set(`${L}${r[1]}${rest.slice(r[0].length)}`, v);
  }
  if (!vit && config.initValues === null)
    for (let i = 0; i < config.depth; i++) {
      out.set(`encoder.layer.${i}.layer_scale1.lambda1`, ones(config.embedDim));
      out.set(`encoder.layer.${i}.layer_scale2.lambda1`, ones(config.embedDim));
    }
  return out;
}

/** The HF config.json matching a ViTConfig (ViTModel for DINO v1, Dinov2[WithRegisters]Model for DINOv2). */
export function toHfConfig(c: ViTConfig): Record<string, unknown> {
  const common = {
    hidden_size: c.embedDim,
    num_hidden_layers: c.depth,
    num_attention_heads: c.numHeads,
    patch_size: c.patchSize,
    image_size: c.imgSize,
    num_channels: c.inChans,
    qkv_bias: c.qkvBias,
    hidden_act: 'gelu',
    layer_norm_eps: c.layerNormEps,
  };
  if (c.family === 'dino') return { model_type: 'vit', architectures: ['ViTModel'], ...common, intermediate_size: Math.round(c.embedDim * c.mlpRatio) };
  const reg = c.numRegisterTokens > 0;
  return {
    model_type: reg ? 'dinov2_with_registers' : 'dinov2',
    architectures: [reg ? 'Dinov2WithRegistersModel' : 'Dinov2Model'],
    ...common,
    mlp_ratio: c.mlpRatio,
    layerscale_value: c.initValues ?? 1.0,
    use_swiglu_ffn: c.ffnLayer !== 'mlp',
    drop_path_rate: c.dropPathRate,
    ...(reg ? { num_register_tokens: c.numRegisterTokens } : {}),
  };
}
