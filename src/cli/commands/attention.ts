// `dinots attention`: per-head CLS self-attention of the last block as heat maps and overlays, and masks keeping a
// share of the attention mass (as DINO v1's visualize_attention.py), with the Jaccard index against given masks.
import type { Command } from 'commander';
import { join } from 'node:path';
import { clsAttentionMaps, jaccard, massThresholdMask, meanMap } from '../../eval/attention.js';
import { collectImages, defaultPictureSize, modelFor, modelInput, pictureCommandOptions, slug, startBackend, viewScale } from '../common.js';
import { blend, chwToImage, colorize, grid, maskOverlay, readImageRGB, resizeImageNearest, resizeNearest, writeHtmlPage, writePng, type HtmlSection } from '../../eval/pictures.js';

const MASK_COLORS: [number, number, number][] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
];

export function register(program: Command): void {
  pictureCommandOptions(
    program
      .command('attention')
      .description('last-block CLS attention per head: heat maps, overlays and attention-mass masks (visualize_attention.py)'),
  )
    .option('--threshold <share>', 'keep this share of each head\'s attention mass in the masks', '0.6')
    .option('--gt <files...>', 'ground-truth masks (nonzero = object), one per image in order: prints the Jaccard index')
    .action(async function (this: Command, o: { model: string; image?: string[]; data?: string; limit: number; out: string; threshold: string; imageSize?: number; gt?: string[] }) {
      const th = Number(o.threshold);
      if (!(th > 0 && th <= 1)) throw new Error(`--threshold must be in (0, 1], got '${o.threshold}'`);
      await startBackend(this);
      const m = (await modelFor(o.model))!;
      const images = await collectImages(o.image, o.data, o.limit);
      if (o.gt && o.gt.length !== images.length) throw new Error(`--gt: ${o.gt.length} masks for ${images.length} images; give one per image, in order`);
      const size = o.imageSize ?? defaultPictureSize(m.model);
      const sections: HtmlSection[] = [];
      const jaccards: number[][] = [];
      for (const [i, im] of images.entries()) {
        const { chw, x } = modelInput(im.rgb, m.model, size);
        const att = clsAttentionMaps(m.model, x);
        x.dispose();
        const { width: W, height: H } = chw;
        const up = viewScale(W, H);
        const view = (img: ReturnType<typeof chwToImage>) => (up > 1 ? resizeImageNearest(img, img.width * up, img.height * up) : img);
        const base = chwToImage(chw.data, H, W);
        const dir = join(o.out, slug(im.name, i));
        const items: HtmlSection['items'] = [];
        const put = async (file: string, img: ReturnType<typeof chwToImage>, caption: string) => {
          await writePng(join(dir, file), view(img));
          items.push({ src: join(dir, file), caption });
        };
        await put('img.png', base, `input ${W}x${H}${im.label !== undefined ? `, label ${im.label}` : ''}`);
        const heads = [...att.maps, meanMap(att.maps)];
        const masks: Uint8Array[] = [];
        const heatTiles = [];
        for (const [h, map] of heads.entries()) {
          const tag = h < att.heads ? `head${h}` : 'mean';
          const heat = colorize(resizeNearest(map, att.gridH, att.gridW, H, W), W, H);
          heatTiles.push(heat);
          await put(`attn-${tag}.png`, heat, `attention ${tag}`);
          await put(`overlay-${tag}.png`, blend(base, heat, 0.6), `overlay ${tag}`);
          const mask = resizeNearest(massThresholdMask(map, th), att.gridH, att.gridW, H, W);
          const bin = Uint8Array.from(mask);
          masks.push(bin);
          await put(`mask_th${th}_${tag}.png`, maskOverlay(base, bin, MASK_COLORS[h % MASK_COLORS.length]!), `mask keeping ${th * 100}% of the mass, ${tag}`);
        }
        await writePng(join(dir, 'heads.png'), view(grid([base, ...heatTiles], heatTiles.length + 1)));
        let text = `${att.heads} heads, patch grid ${att.gridH}x${att.gridW}`;
        if (o.gt) {
          const gt = await readImageRGB(o.gt[i]!);
          const g = new Float32Array(gt.width * gt.height);
          for (let p = 0; p < g.length; p++) g[p] = gt.data[3 * p]! + gt.data[3 * p + 1]! + gt.data[3 * p + 2]! > 0 ? 1 : 0;
          const gtMask = resizeNearest(g, gt.height, gt.width, H, W);
          const js = masks.map((mk) => jaccard(mk, gtMask));
          jaccards.push(js);
          text += `; Jaccard vs ${o.gt[i]}: ${js.map((v, h) => `${h < att.heads ? `h${h}` : 'mean'} ${v.toFixed(3)}`).join(', ')}`;
          process.stdout.write(`${im.name}: Jaccard per head ${js.slice(0, att.heads).map((v) => v.toFixed(3)).join(' ')}, mean-map ${js[att.heads]!.toFixed(3)}, best ${Math.max(...js.slice(0, att.heads)).toFixed(3)}\n`);
        }
        sections.push({ title: im.name, text, items });
      }
      if (jaccards.length) {
        const mean = (f: (js: number[]) => number) => jaccards.reduce((s, js) => s + f(js), 0) / jaccards.length;
        const heads = jaccards[0]!.length - 1;
        process.stdout.write(`mean Jaccard over ${jaccards.length} images: mean-map ${mean((js) => js[heads]!).toFixed(3)}, best head ${mean((js) => Math.max(...js.slice(0, heads))).toFixed(3)}\n`);
      }
      const page = join(o.out, 'index.html');
      writeHtmlPage(page, `Attention maps — ${m.description}`, sections, `Last-block CLS attention per head (registers excluded), nearest-upsampled; masks keep ${th * 100}% of each head's attention mass.`);
      process.stdout.write(`wrote ${images.length} image(s) to ${o.out}; open ${page}\n`);
    });
}
