// Shared bits of the evaluation commands: backend start-up, progress bars, loading features either from a dataset
// (through the model) or from a folder written by `dinots extract`, and the picture commands' options.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { tf } from '../backend/tf.js';
import { initBackend, type BackendName } from '../backend/select.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { decodeImage } from '../data/decode.js';
import { nativeAspectTransform } from '../data/eval_transform.js';
import type { ChwImage, RgbImage } from '../data/image.js';
import type { VisionTransformer } from '../models/vit.js';
import { extractFeatures, readFeatureSet, type ExtractOptions, type FeatureSet } from '../eval/extract.js';
import { loadEvalModel, type EvalModel } from '../eval/model.js';
import { positiveInt } from './parsers.js';

export async function startBackend(cmd: Command): Promise<BackendName> {
  let root = cmd;
  while (root.parent) root = root.parent;
  return initBackend((root.opts().backend as BackendName | 'auto' | undefined) ?? 'auto');
}

/** A progress bar on stderr (silent when stderr is not a terminal, except for a final line). */
export function progressBar(label: string): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = -1;
    return {
      update(done, total) {
        const pct = Math.floor((100 * done) / Math.max(1, total));
        if (pct >= last + 25 || done === total) {
          last = pct;
          process.stderr.write(`${label}: ${done}/${total}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta}s`, stream: process.stderr }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Features of a dataset spec, or of a folder written by `dinots extract` (when `spec` is such a folder). */
export async function featuresFor(spec: string, model: EvalModel | null, opts: ExtractOptions, label: string): Promise<FeatureSet> {
  if (existsSync(join(spec, 'meta.json')) && existsSync(join(spec, 'features.safetensors'))) return readFeatureSet(spec);
  if (!model) throw new Error(`${spec}: a dataset needs --model to compute features (or pass a folder written by 'dinots extract')`);
  const ds = await parseDatasetSpec(spec);
  const bar = progressBar(`${label} ${ds.name}`);
  try {
    return await extractFeatures(model.model, ds, { modelName: model.description, ...opts, onProgress: (d, t) => bar.update(d, t) });
  } finally {
    bar.stop();
  }
}

export async function modelFor(spec: string | undefined): Promise<EvalModel | null> {
  if (!spec) return null;
  const m = await loadEvalModel(spec);
  process.stderr.write(`model: ${m.description}\n`);
  if (m.random) process.stderr.write('note: random weights; features carry no learned semantics\n');
  return m;
}

/** The options of the picture commands: a model, images from files and/or a dataset, an output folder, the input size. */
export function pictureCommandOptions(cmd: Command): Command {
  return imageSizeOption(
    cmd
      .requiredOption('--model <ckpt|name>', 'checkpoint or named config')
      .option('--image <files...>', 'image files')
      .option('--data <spec>', 'take images from a dataset instead/as well (e.g. mnist:test)')
      .option('--limit <n>', 'images taken from --data', positiveInt('--limit'), 8)
      .requiredOption('--out <dir>', 'output folder (PNGs + index.html)'),
  );
}

/** --image-size: the shorter side of the model input (see defaultPictureSize). */
export function imageSizeOption(cmd: Command): Command {
  return cmd.option('--image-size <px>', 'shorter side of the model input (default 480, or the model size for small models)', positiveInt('--image-size'));
}

/** Integer factor that enlarges small inputs (MNIST) to at least 224 px on the shorter side, for viewing. */
export function viewScale(width: number, height: number): number {
  return Math.max(1, Math.ceil(224 / Math.min(width, height)));
}

/** Default picture input size: 480 (visualize_attention.py's default) for models trained at 224+, else their own size. */
export function defaultPictureSize(model: VisionTransformer): number {
  return model.config.imgSize >= 224 ? 480 : model.config.imgSize;
}

export interface NamedImage {
  name: string;
  rgb: RgbImage;
  label?: number;
}

/** Images from files and/or the first `limit` samples of a dataset spec (e.g. mnist:test). */
export async function collectImages(files: string[] = [], dataSpec?: string, limit = 8): Promise<NamedImage[]> {
  const out: NamedImage[] = [];
  for (const f of files) out.push({ name: f, rgb: await decodeImage(f, { name: f }) });
  if (dataSpec) {
    const ds = await parseDatasetSpec(dataSpec);
    for (let i = 0; i < Math.min(limit, ds.length); i++) {
      const s = await ds.get(i);
      out.push({ name: s.path ?? `${ds.name}#${s.index}`, rgb: s.image, label: s.label });
    }
  }
  if (out.length === 0) throw new Error('no images: pass --image FILE... and/or --data SPEC');
  return out;
}

/** The native-aspect model input of an RGB image. */
export function modelInput(rgb: RgbImage, model: VisionTransformer, shorterSide: number): { chw: ChwImage; x: tf.Tensor4D } {
  const chw = nativeAspectTransform(rgb, { patchSize: model.config.patchSize, shorterSide });
  return { chw, x: tf.tensor4d(chw.data, [1, 3, chw.height, chw.width]) };
}

/** A file-system-safe short name for picture files. */
export function slug(name: string, i: number): string {
  const base = name.split('/').pop()!.replace(/\.[a-z0-9]+$/i, '').replace(/[^A-Za-z0-9_-]+/g, '_');
  return `${String(i).padStart(3, '0')}_${base.slice(0, 40)}`;
}
