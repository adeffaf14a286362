// `dinots match A B`: mutual-nearest-neighbour patch correspondences between two images, drawn as lines.
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectImages, defaultPictureSize, imageSizeOption, modelFor, modelInput, startBackend } from '../common.js';
import { positiveInt } from '../parsers.js';
import { patchFeatures } from '../../eval/features.js';
import { mutualNearestNeighbours } from '../../eval/match.js';
import { chwToImage, drawCorrespondences, writeHtmlPage } from '../../eval/pictures.js';

export function register(program: Command): void {
  imageSizeOption(
    program
      .command('match')
      .description('mutual nearest-neighbour patch correspondences between two images (PNG with lines + index.html)')
      .requiredOption('--model <ckpt|name>', 'checkpoint or named config')
      .argument('<a>', 'first image')
      .argument('<b>', 'second image')
      .requiredOption('--out <dir>', 'output folder')
      .option('--max-lines <n>', 'draw at most this many correspondences (the most similar)', positiveInt('--max-lines'), 60),
  )
    .action(async function (this: Command, a: string, b: string, o: { model: string; out: string; maxLines: number; imageSize?: number }) {
      await startBackend(this);
      const m = (await modelFor(o.model))!;
      const [ia, ib] = await collectImages([a, b]);
      const size = o.imageSize ?? defaultPictureSize(m.model);
      const p = m.model.config.patchSize;
      const prep = (rgb: typeof ia.rgb) => {
        const { chw, x } = modelInput(rgb, m.model, size);
        const f = patchFeatures(m.model, x);
        x.dispose();
        return { chw, f };
      };
      const A = prep(ia!.rgb);
      const B = prep(ib!.rgb);
      const pairs = mutualNearestNeighbours(A.f, B.f);
      const centre = (idx: number, gw: number): [number, number] => [((idx % gw) + 0.5) * p, (Math.floor(idx / gw) + 0.5) * p];
      const lines = pairs.slice(0, o.maxLines).map((c) => [...centre(c.a, A.f.gridW), ...centre(c.b, B.f.gridW)] as [number, number, number, number]);
      const png = await drawCorrespondences(chwToImage(A.chw.data, A.chw.height, A.chw.width), chwToImage(B.chw.data, B.chw.height, B.chw.width), lines);
      mkdirSync(o.out, { recursive: true });
      const file = join(o.out, 'matches.png');
      writeFileSync(file, png);
      writeFileSync(join(o.out, 'matches.json'), JSON.stringify({ a, b, gridA: [A.f.gridH, A.f.gridW], gridB: [B.f.gridH, B.f.gridW], patchSize: p, pairs }, null, 0));
      const text = `${pairs.length} mutual nearest neighbours of ${A.f.rows} and ${B.f.rows} patches; ${lines.length} most similar drawn`;
      writeHtmlPage(join(o.out, 'index.html'), `Patch correspondences — ${m.description}`, [{ title: `${a} ↔ ${b}`, text, items: [{ src: file, caption: text }] }]);
      process.stdout.write(`${text}; wrote ${file}\n`);
    });
}
