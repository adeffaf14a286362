// The run report: line charts (loss, lr, collapse monitors, k-NN top-1) drawn with @napi-rs/canvas, attention maps of
// a few test images (last block, CLS → patches, per head, via getLastSelfAttention), and report.html tying them
// together with the summary numbers.
import type { RunEvaluation } from '../eval/run_evaluation.js';
import type { ObjectAttentionScore } from '../eval/object_attention.js';
import { createCanvas } from '@napi-rs/canvas';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../backend/tf.js';
import { buildEvalBatch } from '../data/batch.js';
import type { Dataset } from '../data/datasets.js';
import { clsAttentionMaps } from '../eval/attention.js';
import { chwToImage, colorize, grid, resizeImageNearest, resizeNearest, writeHtmlPage, writePng, type HtmlSection } from '../eval/pictures.js';
import type { VisionTransformer } from '../models/vit.js';
import type { StepResult } from './trainer.js';

export interface Series {
  label: string;
  x: number[];
  y: number[];
  color: string;
}

/** A simple line chart PNG (axes with min/max labels, one polyline per series, optional horizontal reference lines). */
export function lineChartPng(path: string, title: string, series: Series[], opts: { refLines?: { y: number; label: string }[]; logY?: boolean } = {}): void {
  const W = 640;
  const H = 320;
  const m = { l: 70, r: 20, t: 30, b: 40 };
  const canvas = createCanvas(W, H);
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, W, H);
  const tr = (v: number) => (opts.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const xs = series.flatMap((s) => s.x);
  const ys = [...series.flatMap((s) => s.y.map(tr)), ...(opts.refLines ?? []).map((r) => tr(r.y))].filter(Number.isFinite);
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, 1);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((tr(y) - y0) / (y1 - y0)) * (H - m.t - m.b);
  g.strokeStyle = '#333';
  g.lineWidth = 1;
  g.strokeRect(m.l, m.t, W - m.l - m.r, H - m.t - m.b);
  g.fillStyle = '#000';
  g.font = '14px sans-serif';
  g.fillText(title, m.l, 20);
  g.font = '11px sans-serif';
  const fmt = (v: number) => (opts.logY ? (10 ** v).toExponential(1) : Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3));
  g.fillText(fmt(y1), 4, m.t + 10);
  g.fillText(fmt(y0), 4, H - m.b);
  g.fillText(String(x0), m.l, H - m.b + 15);
  g.fillText(String(x1), W - m.r - 40, H - m.b + 15);
  g.fillText('iteration', W / 2 - 20, H - 8);
  for (const r of opts.refLines ?? []) {
    g.strokeStyle = '#999';
    g.setLineDash([4, 4]);
    g.beginPath();
    g.moveTo(m.l, py(r.y));
    g.lineTo(W - m.r, py(r.y));
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = '#666';
    g.fillText(r.label, m.l + 4, py(r.y) - 4);
  }
  series.forEach((s, si) => {
    g.strokeStyle = s.color;
    g.fillStyle = s.color;
    g.lineWidth = 1.5;
    g.beginPath();
    s.x.forEach((x, i) => (i === 0 ? g.moveTo(px(x), py(s.y[i]!)) : g.lineTo(px(x), py(s.y[i]!))));
    g.stroke();
    if (s.x.length < 30) for (let i = 0; i < s.x.length; i++) g.fillRect(px(s.x[i]!) - 2, py(s.y[i]!) - 2, 4, 4);
    g.fillText(s.label, W - m.r - 150, m.t + 14 + 14 * si);
  });
  writeFileSync(path, canvas.toBuffer('image/png'));
}

/** Moving average (window w) to make a noisy per-iteration curve readable. */
export function smooth(y: number[], w: number): number[] {
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    s += y[i]!;
    if (i >= w) s -= y[i - w]!;
    out.push(s / Math.min(i + 1, w));
  }
  return out;
}

/** Attention maps of `n` test images: the image, then one map per head, one row per image. */
export async function attentionPng(path: string, backbone: VisionTransformer, dataset: Dataset, cropSize: number, resizeSize: number, n = 6): Promise<void> {
  const idx = Array.from({ length: Math.min(n, dataset.length) }, (_, i) => Math.floor((i * dataset.length) / n));
  const batch = await buildEvalBatch(dataset, { cropSize, resizeSize }, idx);
  const per = 3 * cropSize * cropSize;
  const scale = Math.max(1, Math.floor(112 / cropSize));
  const S = cropSize * scale;
  const tiles = [];
  let heads = 1;
  for (let i = 0; i < idx.length; i++) {
    const chw = batch.crops[0]!.subarray(i * per, (i + 1) * per);
    const x = tf.tensor(chw, [1, 3, cropSize, cropSize]);
    const a = clsAttentionMaps(backbone, x);
    x.dispose();
    heads = a.heads;
    tiles.push(resizeImageNearest(chwToImage(Float32Array.from(chw), cropSize, cropSize), S, S));
    for (const map of a.maps) tiles.push(colorize(resizeNearest(map, a.gridH, a.gridW, S, S), S, S));
  }
  await writePng(path, grid(tiles, 1 + heads, 2));
}

/** One line of a run's metrics.jsonl (run.ts writes the step result with its iteration). */
type MetricLine = StepResult & { it: number };

export function readMetrics(out: string): MetricLine[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MetricLine);
}

export interface ReportInput {
  out: string;
  summary: Record<string, unknown>;
  knn: { iteration: number; top1: number }[];
  rawPixelTop1: number | null;
  outDim: number;
  attention?: { backbone: VisionTransformer; dataset: Dataset; cropSize: number; resizeSize: number };
  evaluation?: RunEvaluation | null;
  attentionInitial?: ObjectAttentionScore | null;
}

/** The final evaluation as a table: k-NN per backbone and feature next to raw pixels, the probe, the attention score. */
function evaluationHtml(ev: RunEvaluation, initial: ObjectAttentionScore | null): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = ev.knn.map((k) => `<tr><td>k-NN ${esc(k.label)}</td><td>${k.top1.toFixed(2)}%</td></tr>`);
  if (ev.linear) rows.push(`<tr><td>linear probe, ${esc(ev.linear.label)}</td><td>${ev.linear.top1.toFixed(2)}%</td></tr>`);
  for (const a of ev.attention) {
    const before = initial ? ` (at init ${initial.meanHeads.toFixed(3)})` : '';
    rows.push(`<tr><td>attention: Jaccard of the ${a.score.mass * 100}%-mass mask with the digit, ${esc(a.label)}, mean of heads / best head</td><td>${a.score.meanHeads.toFixed(3)} / ${a.score.bestHeadJaccard.toFixed(3)}${before}</td></tr>`);
  }
  return `<p>${esc(ev.protocol)}</p><table>${rows.join('')}</table>`;
}

export async function writeReport(r: ReportInput): Promise<string> {
  const metrics = readMetrics(r.out);
  const its = metrics.map((m) => m.it);
  const w = Math.max(1, Math.round(metrics.length / 50));
  lineChartPng(join(r.out, 'loss.png'), 'DINO loss', [
    { label: 'loss', x: its, y: metrics.map((m) => m.loss), color: '#bbb' },
    { label: `loss (mean of ${w})`, x: its, y: smooth(metrics.map((m) => m.loss), w), color: '#c00' },
  ], { refLines: [{ y: Math.log(r.outDim), label: `ln K = ${Math.log(r.outDim).toFixed(2)} (collapse)` }] });
  lineChartPng(join(r.out, 'lr.png'), 'learning rate', [{ label: 'lr', x: its, y: metrics.map((m) => m.lr), color: '#06c' }]);
  lineChartPng(join(r.out, 'monitors.png'), 'teacher entropy and KL(mean p || uniform) (nats)', [
    { label: 'teacher entropy', x: its, y: smooth(metrics.map((m) => m.teacher_entropy), w), color: '#090' },
    { label: 'KL to uniform', x: its, y: smooth(metrics.map((m) => m.kl_uniform), w), color: '#909' },
  ], { refLines: [{ y: Math.log(r.outDim), label: 'ln K' }] });
  const sections: HtmlSection[] = [
    { title: 'Training curves', items: [{ src: 'loss.png', caption: 'loss per iteration' }, { src: 'lr.png' }, { src: 'monitors.png', caption: 'collapse monitors' }] },
  ];
  if (r.knn.length) {
    lineChartPng(join(r.out, 'knn.png'), 'k-NN top-1 (%) of the teacher CLS', [{ label: 'teacher k-NN top-1', x: r.knn.map((k) => k.iteration), y: r.knn.map((k) => k.top1), color: '#c60' }],
      { refLines: r.rawPixelTop1 !== null ? [{ y: r.rawPixelTop1, label: `raw pixels ${r.rawPixelTop1.toFixed(2)}%` }] : [] });
    sections.push({ title: 'k-NN evaluation', items: [{ src: 'knn.png', caption: 'weighted k-NN top-1 during training; dashed: raw-pixel baseline' }] });
  }
  if (r.evaluation) sections.push({ title: 'Final evaluation (full splits)', html: evaluationHtml(r.evaluation, r.attentionInitial ?? null), items: [] });
  if (r.attention) {
    await attentionPng(join(r.out, 'attention.png'), r.attention.backbone, r.attention.dataset, r.attention.cropSize, r.attention.resizeSize);
    sections.push({ title: 'Attention maps (teacher, last block, CLS → patches, one column per head)', items: [{ src: 'attention.png' }] });
  }
  const intro = Object.entries(r.summary)
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : v}`)
    .join(' · ');
  const path = join(r.out, 'report.html');
  writeHtmlPage(path, `dinots train: ${r.out}`, sections, intro);
  return path;
}
