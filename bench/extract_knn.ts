// Evaluation benchmark, ours and PyTorch's in the same invocation:
//  1. feature extraction throughput (images/s including JPEG decoding and the eval transform) of a random ViT-S/14
//     (dinov2_vits14) at 224 over a folder of generated 500x375 JPEGs, through `extractFeatures` (loader workers);
//  2. the weighted k-NN (knnEvaluate, k = 10,20,100,200, T = 0.07) of `--queries` queries against a `--bank` × `--dim`
//     memory bank of clustered random features with `--classes` labels; the same files go to the torch baseline,
//     and the top-1 / top-5 of both are printed side by side (they must agree: same protocol, no ties in random data).
//   npm run bench -- extract-knn [--images 32] [--batch 16] [--bank 60000] [--queries 10000] [--dim 384]
//                                [--classes 1000] [--threads 2] [--backend auto] [--skip-extract] [--skip-knn] [--no-torch]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { initBackend, type BackendName } from '../src/backend/select.js';
import { parseDatasetSpec } from '../src/data/datasets.js';
import { tf } from '../src/backend/tf.js';
import { extractFeatures } from '../src/eval/extract.js';
import { computeFeatures } from '../src/eval/features.js';
import { knnEvaluate } from '../src/eval/knn.js';
import { createViT } from '../src/models/index.js';
import { Rng } from '../src/util/rng.js';
import { runTorchBaseline } from './baseline.js';

interface Args {
  images: number;
  batch: number;
  bank: number;
  queries: number;
  dim: number;
  classes: number;
  threads: number;
  backend: string;
  extract: boolean;
  knn: boolean;
  torch: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { images: 32, batch: 16, bank: 60000, queries: 10000, dim: 384, classes: 1000, threads: 2, backend: 'auto', extract: true, knn: true, torch: true };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`bench extract-knn: ${argv[i]} needs a positive integer, got '${v}'`);
      i++;
      return n;
    };
    switch (argv[i]) {
      case '--images': a.images = num(); break;
      case '--batch': a.batch = num(); break;
      case '--bank': a.bank = num(); break;
      case '--queries': a.queries = num(); break;
      case '--dim': a.dim = num(); break;
      case '--classes': a.classes = num(); break;
      case '--threads': a.threads = num(); break;
      case '--backend': a.backend = v!; i++; break;
      case '--skip-extract': a.extract = false; break;
      case '--skip-knn': a.knn = false; break;
      case '--no-torch': a.torch = false; break;
      default: throw new Error(`bench extract-knn: unknown argument '${argv[i]}' (see the header of bench/extract_knn.ts)`);
    }
  }
  return a;
}

/** 500x375 JPEGs: crops of the scikit-image sample photos when installed, else smooth random colour fields. */
async function makeImages(dir: string, n: number): Promise<void> {
  const skimage = '/usr/lib/python3/dist-packages/skimage/data';
  const photos = existsSync(skimage) ? readdirSync(skimage).filter((f) => /^(astronaut|chelsea|coffee|rocket|motorcycle_left)\.png$/.test(f)).map((f) => join(skimage, f)) : [];
  const rng = new Rng(11);
  for (let i = 0; i < n; i++) {
    let img: ReturnType<typeof sharp>;
    if (photos.length) {
      const src = sharp(photos[i % photos.length]!);
      const { width = 500, height = 375 } = await src.metadata();
      const w = Math.floor(width * rng.uniform(0.6, 1));
      const h = Math.floor(height * rng.uniform(0.6, 1));
      img = src.extract({ left: rng.randint(0, width - w), top: rng.randint(0, height - h), width: w, height: h }).resize(500, 375, { fit: 'fill' });
    } else {
      const raw = Buffer.from(Uint8Array.from({ length: 50 * 38 * 3 }, () => rng.randint(0, 255)));
      img = sharp(raw, { raw: { width: 50, height: 38, channels: 3 } }).resize(500, 375, { kernel: 'cubic' });
    }
    await img.jpeg({ quality: 90 }).toFile(join(dir, `img_${String(i).padStart(4, '0')}.jpg`));
  }
}

/** Clustered unit-ish features: class centre + noise, so the k-NN accuracy is neither 0 nor 100. */
function memoryBank(a: Args): { bank: Float32Array; bankLabels: Int32Array; queries: Float32Array; queryLabels: Int32Array } {
  const rng = new Rng(5);
  const centres = Float32Array.from({ length: a.classes * a.dim }, () => rng.normal());
  const make = (n: number) => {
    const x = new Float32Array(n * a.dim);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = rng.randint(0, a.classes - 1);
      y[i] = c;
      for (let d = 0; d < a.dim; d++) x[i * a.dim + d] = centres[c * a.dim + d]! + rng.normal(0, 4);
    }
    return { x, y };
  };
  const b = make(a.bank);
  const q = make(a.queries);
  return { bank: b.x, bankLabels: b.y, queries: q.x, queryLabels: q.y };
}

export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const backend = await initBackend(a.backend as BackendName | 'auto');
  const tmp = mkdtempSync(join(tmpdir(), 'dinots-bench-eval-'));
  const imgDir = join(tmp, 'images');
  const knnDir = join(tmp, 'knn');
  const torchArgs = ['--threads', String(a.threads), '--batch', String(a.batch)];
  const lines: string[] = [];
  try {
    const ours: { extract?: number; knnS?: number; knn?: ReturnType<typeof knnEvaluate> } = {};
    if (a.extract) {
      mkdirSync(imgDir);
      await makeImages(imgDir, a.images);
      const model = createViT('dinov2_vits14', { seed: 0 });
      const ds = await parseDatasetSpec(imgDir);
      // warm-up (kernel set-up), not timed
      tf.tidy(() => computeFeatures(model, tf.zeros([1, 3, 224, 224]), { type: 'cls' })).dispose();
      const t0 = performance.now();
      const set = await extractFeatures(model, ds, { batchSize: a.batch, cropSize: 224, resizeSize: 256, workers: a.threads });
      ours.extract = set.features.rows / ((performance.now() - t0) / 1000);
      torchArgs.push('--images', imgDir);
    }
    if (a.knn) {
      mkdirSync(knnDir);
      const mb = memoryBank(a);
      const bytes = (x: Float32Array | Int32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      writeFileSync(join(knnDir, 'bank.f32'), bytes(mb.bank));
      writeFileSync(join(knnDir, 'bank_labels.i32'), bytes(mb.bankLabels));
      writeFileSync(join(knnDir, 'queries.f32'), bytes(mb.queries));
      writeFileSync(join(knnDir, 'query_labels.i32'), bytes(mb.queryLabels));
      const t0 = performance.now();
      ours.knn = knnEvaluate({ data: mb.bank, rows: a.bank, cols: a.dim }, mb.bankLabels, { data: mb.queries, rows: a.queries, cols: a.dim }, mb.queryLabels, { k: [10, 20, 100, 200], T: 0.07, numClasses: a.classes });
      ours.knnS = (performance.now() - t0) / 1000;
      torchArgs.push('--knn-dir', knnDir, '--bank', String(a.bank), '--queries', String(a.queries), '--dim', String(a.dim), '--classes', String(a.classes));
    }
    const torch = a.torch ? runTorchBaseline('bench/torch_extract_knn.py', torchArgs) : null;
    lines.push(`extract-knn benchmark (dinots backend ${backend}; torch ${torch?.torch ?? 'n/a'} with ${a.threads} threads)`);
    if (a.extract) {
      lines.push(`  extraction, random ViT-S/14 at 224, ${a.images} JPEGs 500x375, batch ${a.batch}, decode included:`);
      lines.push(`    dinots ${ours.extract!.toFixed(2)} images/s   torch ${torch?.extract ? (torch.extract.images_per_s as number).toFixed(2) : 'n/a'} images/s`);
    }
    if (a.knn) {
      lines.push(`  weighted k-NN, bank ${a.bank} x ${a.dim}, ${a.queries} queries, ${a.classes} classes, k = 10,20,100,200:`);
      lines.push(`    dinots ${ours.knnS!.toFixed(2)} s   torch ${torch?.knn ? (torch.knn.seconds as number).toFixed(2) : 'n/a'} s`);
      for (const r of ours.knn!.results) {
        const t = torch?.knn?.results?.[String(r.k)];
        lines.push(`    k=${String(r.k).padStart(3)} top-1 dinots ${r.top1.toFixed(2)} / torch ${t ? t.top1.toFixed(2) : 'n/a'}   top-5 dinots ${r.top5.toFixed(2)} / torch ${t ? t.top5.toFixed(2) : 'n/a'}`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main(process.argv.slice(2));
