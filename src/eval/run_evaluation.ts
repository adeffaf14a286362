// The evaluation a training run ends with, on the full labelled splits (not the monitoring subsets): weighted k-NN of
// every trained backbone (teacher and student) on CLS and on CLS + mean-pooled patch tokens, the same k-NN on raw
// pixels (the baseline the features must beat), a linear probe, and the attention-finds-the-object score. Every figure
// carries its label, so summary.json and the report say which backbone and which feature it is.
import type { Dataset } from '../data/datasets.js';
import type { VisionTransformer } from '../models/vit.js';
import { buildEvalBatch } from '../data/batch.js';
import { extractFeatures } from './extract.js';
import { knnEvaluate } from './knn.js';
import { trainLinearProbes } from './linear.js';
import { brightForeground, objectAttentionJaccard, type ObjectAttentionScore } from './object_attention.js';
import type { Matrix } from '../util/matrix.js';

export interface KnnFigure {
  /** e.g. 'teacher CLS', 'student CLS+avgpool', 'raw pixels'. */
  label: string;
  top1: number;
  top5: number;
}

export interface RunEvaluation {
  protocol: string;
  knn: KnnFigure[];
  /** The linear probe on the teacher's features (the better of CLS and CLS+avgpool, chosen on the test split as dinov2). */
  linear: { label: string; top1: number; lr: number } | null;
  attention: { label: string; score: ObjectAttentionScore }[];
  seconds: number;
}

export interface RunEvaluationOptions {
  train: Dataset;
  test: Dataset;
  /** Eval crop side (the global crop size) and resize side. */
  cropSize: number;
  resizeSize: number;
  k?: number;
  T?: number;
  /** Linear probe epochs (0 = no probe). */
  linearEpochs?: number;
  /** Score attention against bright-on-dark foreground on this many test images (0 = skip; for digit-like data). */
  attentionImages?: number;
  log?: (line: string) => void;
}

/** Columns [from, to) of a matrix. */
function columns(m: Matrix, from: number, to: number): Matrix {
  const w = to - from;
  const out = new Float32Array(m.rows * w);
  for (let r = 0; r < m.rows; r++) out.set(m.data.subarray(r * m.cols + from, r * m.cols + to), r * w);
  return { data: out, rows: m.rows, cols: w };
}

/** The eval crops of a dataset as rows of pixels; one channel when all three are equal (grayscale), which leaves
 * cosine similarities unchanged and the bank a third of the size. */
async function pixelRows(ds: Dataset, cropSize: number, resizeSize: number): Promise<{ m: Matrix; labels: Int32Array }> {
  const n = ds.length;
  const per = cropSize * cropSize;
  let gray = true;
  const parts: { crops: Float32Array; labels: Int32Array }[] = [];
  for (let s = 0; s < n; s += 1024) {
    const idx = Array.from({ length: Math.min(1024, n - s) }, (_, i) => s + i);
    const b = await buildEvalBatch(ds, { cropSize, resizeSize }, idx);
    const c = b.crops[0]!;
    for (let i = 0; gray && i < idx.length; i++) {
      const o = i * 3 * per;
      for (let p = 0; p < per; p++) if (c[o + p] !== c[o + per + p] || c[o + p] !== c[o + 2 * per + p]) { gray = false; break; }
    }
    parts.push({ crops: c, labels: b.labels });
  }
  const width = (gray ? 1 : 3) * per;
  const data = new Float32Array(n * width);
  const labels = new Int32Array(n);
  let row = 0;
  for (const p of parts) {
    for (let i = 0; i < p.labels.length; i++, row++) {
      data.set(p.crops.subarray(i * 3 * per, i * 3 * per + width), row * width);
      labels[row] = p.labels[i]!;
    }
  }
  return { m: { data, rows: n, cols: width }, labels };
}

/** Evaluates the named backbones on the full splits. */
export async function evaluateRun(backbones: { name: string; model: VisionTransformer }[], o: RunEvaluationOptions): Promise<RunEvaluation> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const k = o.k ?? 20;
  const T = o.T ?? 0.07;
  const tf_ = { cropSize: o.cropSize, resizeSize: o.resizeSize };
  const knn: KnnFigure[] = [];
  const score = (label: string, bank: Matrix, yb: Int32Array, q: Matrix, yq: Int32Array) => {
    const r = knnEvaluate(bank, yb, q, yq, { k, T }).results[0]!;
    knn.push({ label, top1: r.top1, top5: r.top5 });
    log(`k-NN ${label}: top-1 ${r.top1.toFixed(2)}%`);
  };
  let linear: RunEvaluation['linear'] = null;
  for (const { name, model } of backbones) {
    // layers:1 = [CLS, mean patch] of the last block: both k-NN features and the probe input from one pass.
    const opts = { kind: { type: 'layers' as const, n: 1 }, ...tf_ };
    const tr = await extractFeatures(model, o.train, opts);
    const te = await extractFeatures(model, o.test, opts);
    const D = model.embedDim;
    score(`${name} CLS`, columns(tr.features, 0, D), tr.labels, columns(te.features, 0, D), te.labels);
    score(`${name} CLS+avgpool`, tr.features, tr.labels, te.features, te.labels);
    if (!linear && (o.linearEpochs ?? 10) > 0) {
      const numClasses = Math.max(...tr.labels, ...te.labels) + 1;
      const p = trainLinearProbes(tr.features, tr.labels, te.features, te.labels, {
        embedDim: D, numClasses, nBlocksList: [1], epochs: o.linearEpochs ?? 10, learningRates: [1e-3, 1e-2, 0.1, 1],
      });
      linear = { label: `${name} ${p.best.avgpool ? 'CLS+avgpool' : 'CLS'} (best of CLS, CLS+avgpool x lr ${[1e-3, 1e-2, 0.1, 1].join('/')})`, top1: p.best.top1, lr: p.best.lr };
      log(`linear probe ${linear.label}: top-1 ${p.best.top1.toFixed(2)}%`);
    }
  }
  const px = await pixelRows(o.train, o.cropSize, o.resizeSize);
  const pq = await pixelRows(o.test, o.cropSize, o.resizeSize);
  score('raw pixels', px.m, px.labels, pq.m, pq.labels);
  const attention: RunEvaluation['attention'] = [];
  const nAtt = Math.min(o.attentionImages ?? 0, o.test.length);
  if (nAtt > 0) {
    const b = await buildEvalBatch(o.test, tf_, Array.from({ length: nAtt }, (_, i) => i));
    const fg = brightForeground(b.crops[0]!, nAtt, o.cropSize);
    for (const { name, model } of backbones) attention.push({ label: name, score: objectAttentionJaccard(model, b.crops[0]!, nAtt, o.cropSize, fg) });
  }
  return {
    protocol: `weighted k-NN (k=${k}, T=${T}, L2-normalised) of all ${o.test.length} images of ${o.test.name} against all ${o.train.length} of ${o.train.name}; eval crop ${o.cropSize}px (resize ${o.resizeSize})`,
    knn, linear, attention, seconds: (Date.now() - t0) / 1000,
  };
}
