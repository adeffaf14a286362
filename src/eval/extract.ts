// Feature extraction over a dataset: batched through the eval transform (resize -> centre crop -> normalise, loader
// workers decoding ahead) or one image at a time at its native aspect ratio. In memory, or into a folder where it is
// resumable: samples are processed in dataset order and written in chunk files; `chunks/index.json` records how many
// samples are done and the settings, so a rerun continues after the last complete chunk. When all are done the chunks
// are merged into features.safetensors (features [N, F] float32, labels [N] int64, indices [N] int64),
// features.arrow (Arrow IPC file: path, label, index, feature as FixedSizeList<float32>) and meta.json.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../backend/tf.js';
import { writeFileAtomic } from '../checkpoint/atomic.js';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import type { HostTensor } from '../checkpoint/types.js';
import type { Dataset, DatasetSource, Sample } from '../data/datasets.js';
import { nativeAspectTransform } from '../data/eval_transform.js';
import { EvalLoader } from '../data/loader.js';
import type { VisionTransformer } from '../models/vit.js';
import { computeFeatures, featureDim, featureKindName, type FeatureKind } from './features.js';
import { defaultCropSize, defaultResizeSize } from './model.js';
import { readArrowFeatures, writeArrowFeatures } from './arrow.js';
import type { Matrix } from '../util/matrix.js';

export interface FeatureSet {
  features: Matrix;
  /** Label per row, -1 when the dataset has none. */
  labels: Int32Array;
  /** Dataset index actually read for each row (differs from the row when an unreadable file was replaced). */
  indices: Int32Array;
  /** Path (or 'mnist:train#12') per row. */
  paths: string[];
  meta: FeatureMeta;
}

export interface FeatureMeta {
  model: string;
  features: string;
  dataset: string;
  count: number;
  dim: number;
  classes: string[];
  transform: string;
}

export interface ExtractOptions {
  kind?: FeatureKind;
  batchSize?: number;
  /** 'crop' (default): resize + centre crop; 'native': keep the aspect ratio (batch size 1). */
  aspect?: 'crop' | 'native';
  cropSize?: number;
  resizeSize?: number;
  /** Shorter side for the native-aspect transform (default: cropSize). */
  nativeShorterSide?: number;
  /** Loader worker threads (default: the loader's default; MNIST always decodes in this thread). */
  workers?: number;
  /** Folder to write; without it the features stay in memory only. */
  outDir?: string;
  /** Samples per chunk file (default 4096). */
  chunkSize?: number;
  /** Keep the chunk files after the merge (default false). */
  keepChunks?: boolean;
  /** Description of the model for the metadata (and the resume check). */
  modelName?: string;
  onProgress?: (done: number, total: number) => void;
}

interface ChunkIndex {
  version: 1;
  settings: Record<string, unknown>;
  chunkSize: number;
  /** Samples done (always a whole number of chunks, or the total). */
  done: number;
  chunks: string[];
}

/** Path-like name of dataset row i, for the table. */
function samplePath(src: DatasetSource | null, name: string, i: number): string {
  if (src?.kind === 'files') return src.paths[i] ?? `${name}#${i}`;
  if (src?.kind === 'mnist') return `mnist:${src.split}#${i}`;
  return `${name}#${i}`;
}

function safeSource(ds: Dataset): DatasetSource | null {
  try {
    return ds.source();
  } catch {
    return null;
  }
}

/** Rows [start, end) of a dataset as a dataset; sample indices stay those of the whole dataset. */
function subset(ds: Dataset, start: number): Dataset {
  if (start === 0) return ds;
  const src = safeSource(ds);
  return {
    name: `${ds.name}[${start}:]`,
    length: ds.length - start,
    classes: ds.classes,
    get skipped() {
      return ds.skipped;
    },
    get: async (i: number): Promise<Sample> => ds.get(start + i),
    source(): DatasetSource {
      if (src?.kind === 'files') return { ...src, paths: src.paths.slice(start), labels: src.labels?.slice(start) ?? null };
      throw new Error(`${ds.name}: cannot resume part of it in loader workers`);
    },
  } as Dataset;
}

export async function extractFeatures(model: VisionTransformer, dataset: Dataset, opts: ExtractOptions = {}): Promise<FeatureSet> {
  const kind = opts.kind ?? { type: 'cls' };
  const dim = featureDim(model, kind);
  const crop = opts.cropSize ?? defaultCropSize(model);
  const resize = opts.resizeSize ?? defaultResizeSize(crop);
  const aspect = opts.aspect ?? 'crop';
  const transform =
    aspect === 'native' ? `native aspect, shorter side ~${opts.nativeShorterSide ?? crop}, sides multiples of ${model.config.patchSize}` : `resize ${resize}, centre crop ${crop}`;
  const n = dataset.length;
  const src = safeSource(dataset);
  const meta: FeatureMeta = { model: opts.modelName ?? 'model', features: featureKindName(kind), dataset: dataset.name, count: n, dim, classes: dataset.classes, transform };
  const settings = { model: meta.model, features: meta.features, dataset: meta.dataset, count: n, dim, transform };

  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n).fill(-1);
  const indices = new Int32Array(n);
  const chunkSize = opts.chunkSize ?? 4096;
  let index: ChunkIndex | null = null;
  let start = 0;
  if (opts.outDir) {
    mkdirSync(join(opts.outDir, 'chunks'), { recursive: true });
    index = readChunkIndex(opts.outDir, settings, chunkSize);
    start = index.done;
    // reload the finished chunks
    for (const f of index.chunks) {
      const { tensors } = readSafetensors(join(opts.outDir, 'chunks', f));
      const off = Number(tensors.get('start')!.data[0]);
      const feats = tensors.get('features')!.data as Float32Array;
      features.set(feats, off * dim);
      const cnt = feats.length / dim;
      for (let r = 0; r < cnt; r++) {
        labels[off + r] = Number(tensors.get('labels')!.data[r]);
        indices[off + r] = Number(tensors.get('indices')!.data[r]);
      }
    }
  }

  let chunkStart = start;
  const flush = (upTo: number) => {
    if (!index || !opts.outDir) return;
    while (upTo - chunkStart >= chunkSize || (upTo === n && chunkStart < n)) {
      const end = Math.min(chunkStart + chunkSize, n);
      const name = `chunk-${String(index.chunks.length).padStart(6, '0')}.safetensors`;
      writeSafetensors(join(opts.outDir, 'chunks', name), chunkTensors(features, labels, indices, chunkStart, end, dim));
      index.chunks.push(name);
      index.done = end;
      writeJson(join(opts.outDir, 'chunks', 'index.json'), index);
      chunkStart = end;
    }
  };

  let done = start;
  opts.onProgress?.(done, n);
  const run = (x: tf.Tensor4D, rows: number[], ys: ArrayLike<number>, used: ArrayLike<number>) => {
    const f = computeFeatures(model, x, kind);
    const data = f.dataSync() as Float32Array;
    f.dispose();
    rows.forEach((row, b) => {
      features.set(data.subarray(b * dim, (b + 1) * dim), row * dim);
      labels[row] = ys[b]!;
      indices[row] = used[b]!;
    });
    done += rows.length;
    flush(done);
    opts.onProgress?.(done, n);
  };

  if (start < n && aspect === 'native') {
    for (let i = start; i < n; i++) {
      const s = await dataset.get(i);
      const chw = nativeAspectTransform(s.image, { patchSize: model.config.patchSize, shorterSide: opts.nativeShorterSide ?? crop });
      const x = tf.tensor4d(chw.data, [1, 3, chw.height, chw.width]);
      run(x, [i], [s.label ?? -1], [s.index]);
      x.dispose();
    }
  } else if (start < n) {
    const workers = src?.kind === 'files' ? opts.workers : 0;
    const loader = new EvalLoader(subset(dataset, start), { batchSize: opts.batchSize ?? 64, workers, transform: { cropSize: crop, resizeSize: resize } });
    try {
      let row = start;
      for await (const b of loader.batches()) {
        const B = b.labels.length;
        const x = tf.tensor4d(b.images, [B, 3, b.cropSize, b.cropSize]);
        run(x, Array.from({ length: B }, (_, k) => row + k), b.labels, b.indices);
        x.dispose();
        row += B;
      }
    } finally {
      await loader.close();
    }
  }
  flush(n);

  const paths = Array.from(indices, (i) => samplePath(src, dataset.name, i));
  const set: FeatureSet = { features: { data: features, rows: n, cols: dim }, labels, indices, paths, meta };
  if (opts.outDir) {
    writeFeatureSet(opts.outDir, set);
    if (!opts.keepChunks) rmSync(join(opts.outDir, 'chunks'), { recursive: true, force: true });
  }
  return set;
}

function chunkTensors(features: Float32Array, labels: Int32Array, indices: Int32Array, start: number, end: number, dim: number): Map<string, HostTensor> {
  const n = end - start;
  return new Map<string, HostTensor>([
    ['features', { dtype: 'float32', shape: [n, dim], data: features.slice(start * dim, end * dim) }],
    ['labels', { dtype: 'int64', shape: [n], data: BigInt64Array.from(labels.subarray(start, end), (v) => BigInt(v)) }],
    ['indices', { dtype: 'int64', shape: [n], data: BigInt64Array.from(indices.subarray(start, end), (v) => BigInt(v)) }],
    ['start', { dtype: 'int64', shape: [1], data: BigInt64Array.of(BigInt(start)) }],
  ]);
}

function readChunkIndex(dir: string, settings: Record<string, unknown>, chunkSize: number): ChunkIndex {
  const p = join(dir, 'chunks', 'index.json');
  const fresh: ChunkIndex = { version: 1, settings, chunkSize, done: 0, chunks: [] };
  if (!existsSync(p)) {
    if (existsSync(join(dir, 'meta.json'))) {
      throw new Error(`${dir} already holds finished features (meta.json); choose another --out or delete the folder`);
    }
    return fresh;
  }
  const idx = JSON.parse(readFileSync(p, 'utf8')) as ChunkIndex;
  if (JSON.stringify(idx.settings) !== JSON.stringify(settings) || idx.chunkSize !== chunkSize) {
    throw new Error(
      `${p}: an unfinished extraction with other settings (${JSON.stringify(idx.settings)}, chunk ${idx.chunkSize}) is there; ` +
        `use another --out, or delete ${join(dir, 'chunks')} to start over`,
    );
  }
  return idx;
}

function writeJson(path: string, obj: unknown): void {
  const bytes = new TextEncoder().encode(JSON.stringify(obj, null, 1) + '\n');
  writeFileAtomic(path, (s) => s.write(bytes));
}

/** Writes features.safetensors, features.arrow and meta.json into `dir`. */
export function writeFeatureSet(dir: string, set: FeatureSet): void {
  mkdirSync(dir, { recursive: true });
  const { rows, cols, data } = set.features;
  writeSafetensors(
    join(dir, 'features.safetensors'),
    new Map<string, HostTensor>([
      ['features', { dtype: 'float32', shape: [rows, cols], data }],
      ['labels', { dtype: 'int64', shape: [rows], data: BigInt64Array.from(set.labels, (v) => BigInt(v)) }],
      ['indices', { dtype: 'int64', shape: [rows], data: BigInt64Array.from(set.indices, (v) => BigInt(v)) }],
    ]),
    { format: 'dinots-features', features: set.meta.features, model: set.meta.model, dataset: set.meta.dataset },
  );
  writeArrowFeatures(join(dir, 'features.arrow'), set);
  writeJson(join(dir, 'meta.json'), set.meta);
}

/** Reads a folder written by extractFeatures / writeFeatureSet (or its features.safetensors / features.arrow). */
export function readFeatureSet(path: string): FeatureSet {
  const dir = path.endsWith('.safetensors') || path.endsWith('.arrow') ? join(path, '..') : path;
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) throw new Error(`${path}: no meta.json here; expected a folder written by 'dinots extract'`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as FeatureMeta;
  const stPath = join(dir, 'features.safetensors');
  if (!existsSync(stPath)) return readArrowFeatures(join(dir, 'features.arrow'), meta);
  const { tensors } = readSafetensors(stPath);
  const f = tensors.get('features');
  if (!f || f.shape.length !== 2) throw new Error(`${stPath}: no 'features' [N, F] tensor`);
  const labels = Int32Array.from(tensors.get('labels')!.data as BigInt64Array, Number);
  const indices = Int32Array.from(tensors.get('indices')!.data as BigInt64Array, Number);
  const arrowPath = join(dir, 'features.arrow');
  const paths = existsSync(arrowPath) ? readArrowFeatures(arrowPath, meta).paths : Array.from(indices, (i) => `${meta.dataset}#${i}`);
  return { features: { data: f.data as Float32Array, rows: f.shape[0]!, cols: f.shape[1]! }, labels, indices, paths, meta };
}
