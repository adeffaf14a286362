// Small picture helpers shared by the evaluation commands (and the training report): RGB images as plain byte
// arrays, colormaps, resizing of score maps, overlays, grids, PNG encoding (sharp) and one static HTML page.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { IMAGENET_MEAN, IMAGENET_STD, type RgbImage } from '../data/image.js';
import { colormapTable, type ColormapName } from './colormaps.js';

/** 8-bit RGB, HWC, row-major: the data pipeline's RgbImage. */
export type RGBImage = RgbImage;

export function blankImage(width: number, height: number, rgb: [number, number, number] = [0, 0, 0]): RGBImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

/** One CHW float image (normalised with mean/std, ImageNet's by default) back to RGB bytes for display. */
export function chwToImage(
  chw: Float32Array,
  height: number,
  width: number,
  mean: readonly number[] = IMAGENET_MEAN,
  std: readonly number[] = IMAGENET_STD,
): RGBImage {
  const plane = height * width;
  if (chw.length !== 3 * plane) throw new Error(`chwToImage: expected ${3 * plane} values for 3x${height}x${width}, got ${chw.length}`);
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = (chw[c * plane + i]! * std[c]! + mean[c]!) * 255;
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
  }
  return { width, height, data: out };
}

/** Resizes a single-channel score map (row-major h×w) with nearest-neighbour (as F.interpolate mode='nearest'). */
export function resizeNearest(values: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(h - 1, Math.floor((y * h) / outH));
    for (let x = 0; x < outW; x++) out[y * outW + x] = values[sy * w + Math.min(w - 1, Math.floor((x * w) / outW))]!;
  }
  return out;
}

/** Bilinear resize of a single-channel map with half-pixel centres (align_corners=False), edges clamped. */
export function resizeBilinear(values: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / outH - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / outW - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = fx - x0;
      const top = values[y0 * w + x0]! * (1 - tx) + values[y0 * w + x1]! * tx;
      const bottom = values[y1 * w + x0]! * (1 - tx) + values[y1 * w + x1]! * tx;
      out[y * outW + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** Maps values to colours; the range defaults to the values' own min..max (as plt.imsave does). */
export function colorize(
  values: ArrayLike<number>,
  width: number,
  height: number,
  opts: { colormap?: ColormapName; min?: number; max?: number } = {},
): RGBImage {
  const n = width * height;
  if (values.length !== n) throw new Error(`colorize: expected ${n} values for ${width}x${height}, got ${values.length}`);
  let lo = opts.min ?? Infinity;
  let hi = opts.max ?? -Infinity;
  if (opts.min === undefined || opts.max === undefined) {
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (opts.min === undefined && v < lo) lo = v;
      if (opts.max === undefined && v > hi) hi = v;
    }
  }
  const lut = colormapTable(opts.colormap ?? 'viridis');
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    let k = Math.round((values[i]! - lo) * scale);
    k = k < 0 ? 0 : k > 255 ? 255 : k;
    out[i * 3] = lut[k * 3]!;
    out[i * 3 + 1] = lut[k * 3 + 1]!;
    out[i * 3 + 2] = lut[k * 3 + 2]!;
  }
  return { width, height, data: out };
}

/** Alpha-blends `top` over `base` (same size): base*(1-alpha) + top*alpha. */
export function blend(base: RGBImage, top: RGBImage, alpha: number): RGBImage {
  sameSize(base, top, 'blend');
  const out = new Uint8Array(base.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(base.data[i]! * (1 - alpha) + top.data[i]! * alpha);
  return { width: base.width, height: base.height, data: out };
}

/**
 * Paints a binary mask over an image in one colour (like display_instances in the official visualize_attention.py):
 * inside the mask the colour is blended in with `alpha`, and the mask's outline is drawn solid.
 */
export function maskOverlay(base: RGBImage, mask: ArrayLike<number>, color: [number, number, number], alpha = 0.5): RGBImage {
  const { width: w, height: h } = base;
  if (mask.length !== w * h) throw new Error(`maskOverlay: mask has ${mask.length} values, image ${w}x${h}`);
  const out = Uint8Array.from(base.data);
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x]! > 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!inside(x, y)) continue;
      const edge = !inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1);
      const i = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) out[i + c] = edge ? color[c]! : Math.round(out[i + c]! * (1 - alpha) + color[c]! * alpha);
    }
  }
  return { width: w, height: h, data: out };
}

/** Nearest-neighbour resize of an RGB image (used for small inputs such as 28×28 digits). */
export function resizeImageNearest(img: RGBImage, outW: number, outH: number): RGBImage {
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(img.height - 1, Math.floor((y * img.height) / outH));
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(img.width - 1, Math.floor((x * img.width) / outW));
      out.set(img.data.subarray((sy * img.width + sx) * 3, (sy * img.width + sx) * 3 + 3), (y * outW + x) * 3);
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Tiles images left to right, `cols` per row, with `pad` pixels of `background` between them. */
export function grid(images: RGBImage[], cols: number, pad = 2, background: [number, number, number] = [255, 255, 255]): RGBImage {
  if (images.length === 0) throw new Error('grid: no images');
  const cellW = Math.max(...images.map((i) => i.width));
  const cellH = Math.max(...images.map((i) => i.height));
  const rows = Math.ceil(images.length / cols);
  const c = Math.min(cols, images.length);
  const out = blankImage(c * cellW + (c + 1) * pad, rows * cellH + (rows + 1) * pad, background);
  images.forEach((img, k) => paste(out, img, pad + (k % cols) * (cellW + pad), pad + Math.floor(k / cols) * (cellH + pad)));
  return out;
}

/** Copies `img` into `dst` with its top-left corner at (x0, y0), clipped to `dst`. */
export function paste(dst: RGBImage, img: RGBImage, x0: number, y0: number): void {
  for (let y = 0; y < img.height; y++) {
    const dy = y0 + y;
    if (dy < 0 || dy >= dst.height) continue;
    for (let x = 0; x < img.width; x++) {
      const dx = x0 + x;
      if (dx < 0 || dx >= dst.width) continue;
      const s = (y * img.width + x) * 3;
      dst.data.set(img.data.subarray(s, s + 3), (dy * dst.width + dx) * 3);
    }
  }
}

export async function encodePng(img: RGBImage): Promise<Buffer> {
  if (img.data.length !== img.width * img.height * 3) throw new Error(`encodePng: ${img.data.length} bytes for ${img.width}x${img.height} RGB`);
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .png()
    .toBuffer();
}

export async function writePng(path: string, img: RGBImage): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await encodePng(img));
}

/** Decodes any image file sharp reads (PNG, JPEG, WebP, ...) to RGB bytes; for display, not for model input. */
export async function readImageRGB(path: string): Promise<RGBImage> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path}: expected 3 channels after conversion, got ${info.channels}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export interface HtmlItem {
  /** Path of the picture (absolute or relative to the working directory); written relative to the page. */
  src: string;
  caption?: string;
}

export interface HtmlSection {
  title: string;
  text?: string;
  /** Markup made by our own code (tables), inserted as it is after the text. */
  html?: string;
  items: HtmlItem[];
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Writes one self-contained page showing the pictures section by section (image paths relative to the page). */
export function writeHtmlPage(path: string, title: string, sections: HtmlSection[], intro?: string): void {
  const base = dirname(path);
  const rel = (p: string) => relative(resolve(base), resolve(p)).split('\\').join('/');
  const body = sections
    .map((s) => {
      const figs = s.items
        .map(
          (it) =>
            `<figure><img src="${escapeHtml(rel(it.src))}" loading="lazy"><figcaption>${escapeHtml(it.caption ?? '')}</figcaption></figure>`,
        )
        .join('\n');
      return `<section><h2>${escapeHtml(s.title)}</h2>${s.text ? `<p>${escapeHtml(s.text)}</p>` : ''}${s.html ?? ''}<div class="row">${figs}</div></section>`;
    })
    .join('\n');
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:sans-serif;margin:1em;background:#fafafa}
.row{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;background:#fff;padding:4px;border:1px solid #ddd}
figure img{max-width:480px;max-height:480px;image-rendering:pixelated;display:block}
figcaption{font-size:12px;max-width:480px;word-break:break-all}
</style></head><body>
<h1>${escapeHtml(title)}</h1>${intro ? `<p>${escapeHtml(intro)}</p>` : ''}
${body}
</body></html>
`;
  mkdirSync(base, { recursive: true });
  writeFileSync(path, html);
}

function sameSize(a: RGBImage, b: RGBImage, what: string): void {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`${what}: sizes differ (${a.width}x${a.height} vs ${b.width}x${b.height})`);
}

/** Two images side by side with lines between matched points ([xA, yA, xB, yB] in each image's pixels). */
export async function drawCorrespondences(a: RGBImage, b: RGBImage, lines: [number, number, number, number][]): Promise<Buffer> {
  const { createCanvas, ImageData } = await import('@napi-rs/canvas');
  const gap = 10;
  const W = a.width + gap + b.width;
  const H = Math.max(a.height, b.height);
  const canvas = createCanvas(W, H);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, W, H);
  const toImageData = (img: RGBImage) => {
    const rgba = new Uint8ClampedArray(img.width * img.height * 4);
    for (let p = 0; p < img.width * img.height; p++) {
      rgba.set(img.data.subarray(3 * p, 3 * p + 3), 4 * p);
      rgba[4 * p + 3] = 255;
    }
    return new ImageData(rgba, img.width, img.height);
  };
  ctx.putImageData(toImageData(a), 0, 0);
  ctx.putImageData(toImageData(b), a.width + gap, 0);
  ctx.lineWidth = Math.max(1, Math.round(Math.min(W, H) / 300));
  lines.forEach(([xa, ya, xb, yb], i) => {
    ctx.strokeStyle = `hsl(${Math.round((360 * i) / Math.max(1, lines.length))}, 90%, 50%)`;
    ctx.beginPath();
    ctx.moveTo(xa, ya);
    ctx.lineTo(a.width + gap + xb, yb);
    ctx.stroke();
    for (const [x, y] of [[xa, ya], [a.width + gap + xb, yb]] as const) {
      ctx.beginPath();
      ctx.arc(x, y, ctx.lineWidth * 2, 0, 2 * Math.PI);
      ctx.stroke();
    }
  });
  return canvas.encode('png');
}
