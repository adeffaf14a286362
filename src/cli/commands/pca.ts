// `dinots pca`: joint PCA of the patch features of several images; the first component thresholded for the
// foreground, three more components as RGB on it (the DINOv2 README picture). One PNG per image + index.html.
import type { Command } from 'commander';
import { join } from 'node:path';
import { collectImages, defaultPictureSize, modelFor, modelInput, pictureCommandOptions, slug, startBackend, viewScale } from '../common.js';
import { patchFeatures } from '../../eval/features.js';
import { patchPca } from '../../eval/pca.js';
import { chwToImage, colorize, grid, resizeImageNearest, resizeNearest, writeHtmlPage, writePng, type HtmlSection, type RGBImage } from '../../eval/pictures.js';
import type { Matrix } from '../../util/matrix.js';

function rgbPatches(rgb: Float32Array, gh: number, gw: number, H: number, W: number): RGBImage {
  const out = new Uint8Array(H * W * 3);
  for (let c = 0; c < 3; c++) {
    const ch = resizeNearest(Float32Array.from({ length: gh * gw }, (_, p) => rgb[p * 3 + c]!), gh, gw, H, W);
    for (let p = 0; p < H * W; p++) out[p * 3 + c] = Math.round(255 * ch[p]!);
  }
  return { width: W, height: H, data: out };
}

export function register(program: Command): void {
  pictureCommandOptions(
    program
      .command('pca')
      .description('PCA of patch features over several images: foreground from the 1st component, 3 components as RGB'),
  )
    .option('--threshold <t>', 'foreground threshold on the min-max scaled first component', '0.5')
    .option('--no-refit', 'colour with components 2-4 of the first PCA instead of a second PCA on the foreground')
    .option('--no-foreground', 'colour every patch (skip the foreground step)')
    .action(async function (this: Command, o: { model: string; image?: string[]; data?: string; limit: number; out: string; threshold: string; refit: boolean; foreground: boolean; imageSize?: number }) {
      const threshold = Number(o.threshold);
      if (!(threshold >= 0 && threshold < 1)) throw new Error(`--threshold must be in [0, 1), got '${o.threshold}'`);
      await startBackend(this);
      const m = (await modelFor(o.model))!;
      const images = await collectImages(o.image, o.data, o.limit);
      const size = o.imageSize ?? defaultPictureSize(m.model);
      const feats: Matrix[] = [];
      const grids: [number, number][] = [];
      const inputs = [];
      for (const im of images) {
        const { chw, x } = modelInput(im.rgb, m.model, size);
        const f = patchFeatures(m.model, x);
        x.dispose();
        feats.push(f);
        grids.push([f.gridH, f.gridW]);
        inputs.push(chw);
      }
      const res = patchPca(feats, grids, { threshold, refit: o.refit, noForeground: !o.foreground });
      const sections: HtmlSection[] = [];
      for (const [i, r] of res.entries()) {
        const chw = inputs[i]!;
        const { width: W, height: H } = chw;
        const base = chwToImage(chw.data, H, W);
        const pc1 = colorize(resizeNearest(r.firstComponent, r.gridH, r.gridW, H, W), W, H, { min: 0, max: 1 });
        const fg = colorize(resizeNearest(r.foreground, r.gridH, r.gridW, H, W), W, H, { colormap: 'gray', min: 0, max: 1 });
        const rgb = rgbPatches(r.rgb, r.gridH, r.gridW, H, W);
        let panel = grid([base, pc1, fg, rgb], 4);
        const up = viewScale(W, H);
        if (up > 1) panel = resizeImageNearest(panel, panel.width * up, panel.height * up);
        const file = join(o.out, `${slug(images[i]!.name, i)}.png`);
        await writePng(file, panel);
        const fgShare = r.foreground.reduce((s, v) => s + v, 0) / r.foreground.length;
        sections.push({ title: images[i]!.name, text: `grid ${r.gridH}x${r.gridW}, foreground ${(100 * fgShare).toFixed(0)}% of patches`, items: [{ src: file, caption: 'image | 1st component | foreground | RGB of 3 components' }] });
      }
      const page = join(o.out, 'index.html');
      writeHtmlPage(page, `Patch-feature PCA — ${m.description}`, sections, `Joint PCA over ${images.length} images; foreground = 1st component > ${threshold} after min-max scaling; colours from ${o.refit ? 'a second PCA on the foreground patches' : 'components 2-4'}.`);
      process.stdout.write(`wrote ${images.length} picture(s) to ${o.out}; open ${page}\n`);
    });
}
