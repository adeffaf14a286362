// Embedders for the curation pipeline: a dataset spec in, one L2-normalised vector per image out.
//   pixelEmbedder()        a tiny-image descriptor (16x16 RGB, per-image standardised): no model needed; a baseline
//                          that catches exact and lightly edited copies but not semantic neighbours
//   modelEmbedder(...)     CLS embeddings of a ViT checkpoint or named config (eval/extract.ts)
// Paths stored for images without a file (MNIST) are '<spec>#<index>'; datasetThumbnail() turns them back into pixels.
import { existsSync, statSync } from 'node:fs';
import { parseDatasetSpec, type Dataset } from '../data/datasets.js';
import type { RgbImage } from '../data/image.js';
import { resizeImageNearest, type RGBImage } from '../eval/pictures.js';
import { type Matrix, makeMatrix, l2NormalizeRows } from '../util/matrix.js';
import type { Embedder } from './pipeline.js';
import { fileThumbnail, type ThumbnailSource } from './report.js';

/** The path recorded for sample i of a dataset. */
export function samplePath(spec: string, path: string | undefined, index: number): string {
  return path ?? `${spec}#${index}`;
}

/** Area-averaged side x side RGB thumbnail, standardised per image (mean 0, unit norm): robust to brightness/contrast. */
export function tinyImageEmbedding(img: RgbImage, side = 16): Float32Array {
  const out = new Float32Array(side * side * 3);
  const counts = new Float32Array(side * side);
  for (let y = 0; y < img.height; y++) {
    const cy = Math.min(side - 1, Math.floor((y * side) / img.height));
    for (let x = 0; x < img.width; x++) {
      const cx = Math.min(side - 1, Math.floor((x * side) / img.width));
      const cell = cy * side + cx;
      const p = (y * img.width + x) * 3;
      counts[cell]!++;
      for (let c = 0; c < 3; c++) out[cell * 3 + c]! += img.data[p + c]!;
    }
  }
  let mean = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i]! / Math.max(1, counts[Math.floor(i / 3)]!);
    mean += out[i]!;
  }
  mean /= out.length;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i]! - mean;
    norm += out[i]! * out[i]!;
  }
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < out.length; i++) out[i]! *= inv;
  return out;
}

async function embedEach(ds: Dataset, spec: string, dim: number, f: (img: RgbImage) => Float32Array): Promise<{ paths: string[]; embeddings: Matrix }> {
  const m = makeMatrix(ds.length, dim);
  const paths: string[] = [];
  for (let i = 0; i < ds.length; i++) {
    const s = await ds.get(i);
    paths.push(samplePath(spec, s.path, i));
    m.data.set(f(s.image), i * dim);
  }
  return { paths, embeddings: l2NormalizeRows(m) };
}

export function pixelEmbedder(side = 16): Embedder {
  return async (spec) => embedEach(await parseDatasetSpec(spec), spec, side * side * 3, (img) => tinyImageEmbedding(img, side));
}

/** Thumbnails for files and for '<spec>#<index>' dataset samples. */
export function datasetThumbnail(): ThumbnailSource {
  const open = new Map<string, Promise<Dataset>>();
  return async (path, size): Promise<RGBImage> => {
    const m = /^(.*)#(\d+)$/.exec(path);
    if (existsSync(path) || !m) return fileThumbnail(path, size);
    if (!open.has(m[1]!)) open.set(m[1]!, parseDatasetSpec(m[1]!));
    const s = await (await open.get(m[1]!)!).get(Number(m[2]));
    return resizeImageNearest(s.image, size, size);
  };
}

export interface ModelEmbedderOptions {
  batchSize?: number;
  cropSize?: number;
  workers?: number;
  /** Seed of the random init when the model is a named config. */
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** CLS embeddings of a checkpoint or named config; returns the embedder and a description for fingerprints. */
export async function modelEmbedder(modelSpec: string, opts: ModelEmbedderOptions = {}): Promise<{ embedder: Embedder; modelId: string }> {
  const { loadEvalModel } = await import('../eval/model.js');
  const { extractFeatures } = await import('../eval/extract.js');
  const loaded = await loadEvalModel(modelSpec, { seed: opts.seed });
  const modelId = existsSync(modelSpec) ? `${loaded.description} ${statSignature(modelSpec)}` : loaded.description;
  const embedder: Embedder = async (spec, _role, cacheDir) => {
    const ds = await parseDatasetSpec(spec);
    const set = await extractFeatures(loaded.model, ds, {
      kind: { type: 'cls' },
      batchSize: opts.batchSize,
      cropSize: opts.cropSize,
      workers: opts.workers,
      outDir: cacheDir,
      modelName: modelId,
      onProgress: opts.onProgress,
    });
    return { paths: set.paths, embeddings: set.features };
  };
  return { embedder, modelId };
}

function statSignature(p: string): string {
  const st = statSync(p);
  return `${st.size}:${Math.round(st.mtimeMs)}`;
}
