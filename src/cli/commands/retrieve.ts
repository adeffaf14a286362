// `dinots retrieve`: nearest images of queries in an index set by cosine similarity of CLS features (exact blocked
// matmul, or an approximate usearch HNSW index), an HTML page of the neighbours, and mAP / recall@k with labels.
import type { Command } from 'commander';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileDataset, parseDatasetSpec, type Dataset } from '../../data/datasets.js';
import { isImagePath } from '../../data/decode.js';
import { featuresFor, modelFor, progressBar, startBackend } from '../common.js';
import { intList, positiveInt } from '../parsers.js';
import { extractFeatures, readFeatureSet, type FeatureSet } from '../../eval/extract.js';
import { parseFeatureKind } from '../../eval/features.js';
import { grid, paste, blankImage, resizeImageNearest, writeHtmlPage, writePng, type HtmlSection, type RGBImage } from '../../eval/pictures.js';
import { ApproxCosineIndex, exactCosineSearch, retrievalMetrics } from '../../eval/retrieval.js';
import type { TopK } from '../../eval/topk.js';
import sharp from 'sharp';

/** Re-opens the dataset behind a feature set to show thumbnails (null when its images cannot be found). */
async function datasetOf(set: FeatureSet, spec: string): Promise<Dataset | null> {
  try {
    if (existsSync(spec) && statSync(spec).isFile() && isImagePath(spec)) return new FileDataset(spec, [spec], null, []);
    if (!existsSync(join(spec, 'meta.json'))) return await parseDatasetSpec(spec);
    return await parseDatasetSpec(set.meta.dataset);
  } catch {
    return null;
  }
}

async function thumbnail(ds: Dataset | null, index: number, side: number): Promise<RGBImage> {
  if (!ds) return blankImage(side, side, [200, 200, 200]);
  const s = await ds.get(index);
  if (s.image.width <= 64 && s.image.height <= 64) return resizeImageNearest(s.image, side, side);
  const { data, info } = await sharp(Buffer.from(s.image.data), { raw: { width: s.image.width, height: s.image.height, channels: 3 } })
    .resize(side, side, { fit: 'cover' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

export function register(program: Command): void {
  program
    .command('retrieve')
    .description('image retrieval by cosine similarity: neighbours page (HTML) and mAP / recall@k when labels are given')
    .option('--model <ckpt|name>', 'backbone (needed unless --index/--query are folders written by dinots extract)')
    .requiredOption('--index <spec>', "images to search: dataset spec or a 'dinots extract' folder")
    .option('--query <file|spec>', 'an image file, a dataset spec or an extract folder (default: every index image, leave-one-out)')
    .requiredOption('--out <dir>', 'output folder (index.html, thumbnails, results.json)')
    .option('--k <n>', 'neighbours shown per query', positiveInt('--k'), 10)
    .option('--show <n>', 'queries shown on the page', positiveInt('--show'), 20)
    .option('--approx', 'use an approximate HNSW index (usearch) instead of the exact search')
    .option('--metric-depth <n>', 'ranked-list length for mAP (default: the whole index; 100 with --approx)', positiveInt('--metric-depth'))
    .option('--recall-at <list>', 'k values for recall@k / precision@k', '1,5,10')
    .option('--features <kind>', 'feature when computing from a dataset: cls, patch, cls+avgpool, layers:N', 'cls')
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .action(async function (this: Command, o: { model?: string; index: string; query?: string; out: string; k: number; show: number; approx?: boolean; metricDepth?: number; recallAt: string; features: string; batchSize: number }) {
      const recallKs = intList(o.recallAt, '--recall-at');
      await startBackend(this);
      const m = await modelFor(o.model);
      const opts = { kind: parseFeatureKind(o.features), batchSize: o.batchSize };
      const index = await featuresFor(o.index, m, opts, 'index');
      const selfQuery = !o.query || o.query === o.index;
      let query = index;
      if (!selfQuery) {
        const q = o.query!;
        if (existsSync(q) && statSync(q).isFile()) {
          if (!m) throw new Error('--query FILE needs --model');
          query = await extractFeatures(m.model, new FileDataset(q, [q], null, []), { ...opts, modelName: m.description });
        } else query = existsSync(join(q, 'meta.json')) ? readFeatureSet(q) : await featuresFor(q, m, opts, 'query');
      }
      const labelled = index.labels.every((v) => v >= 0) && query.labels.every((v) => v >= 0);
      const depth = labelled ? Math.min(o.metricDepth ?? (o.approx ? 100 : index.features.rows), index.features.rows) : o.k; // HNSW: a truncated list
      const want = Math.max(o.k, depth);
      const t0 = performance.now();
      let ranked: TopK;
      if (o.approx) {
        const idx = ApproxCosineIndex.build(index.features);
        ranked = idx.search(query.features, want, { excludeSelf: selfQuery });
      } else {
        const bar = progressBar('search');
        ranked = exactCosineSearch(query.features, index.features, want, { excludeSelf: selfQuery, onProgress: (d, t) => bar.update(d, t) });
        bar.stop();
      }
      const seconds = (performance.now() - t0) / 1000;
      const metrics = labelled ? retrievalMetrics(ranked, query.labels, index.labels, { ks: recallKs, excludeSelf: selfQuery }) : null;
      mkdirSync(o.out, { recursive: true });
      const k = Math.min(o.k, ranked.k);
      const neighbours = Array.from({ length: query.features.rows }, (_, q) =>
        Array.from({ length: k }, (_, j) => ({ index: ranked.indices[q * ranked.k + j]!, score: ranked.scores[q * ranked.k + j]! })),
      );
      writeFileSync(join(o.out, 'results.json'), JSON.stringify({ index: o.index, query: o.query ?? o.index, exact: !o.approx, seconds, metrics, neighbours: neighbours.slice(0, 1000) }));
      // page: one row per shown query: the query, then its neighbours (green frame = same label)
      const qds = await datasetOf(query, o.query ?? o.index);
      const ids = selfQuery ? qds : await datasetOf(index, o.index);
      const side = 96;
      const sections: HtmlSection[] = [];
      for (let q = 0; q < Math.min(o.show, query.features.rows); q++) {
        const tiles = [await thumbnail(qds, query.indices[q]!, side)];
        for (const nb of neighbours[q]!) {
          const t = await thumbnail(ids, index.indices[nb.index]!, side);
          if (labelled) {
            const framed = blankImage(side + 6, side + 6, index.labels[nb.index] === query.labels[q] ? [40, 180, 60] : [220, 40, 40]);
            paste(framed, t, 3, 3);
            tiles.push(framed);
          } else tiles.push(t);
        }
        const file = join(o.out, 'rows', `query_${String(q).padStart(4, '0')}.png`);
        await writePng(file, grid(tiles, tiles.length, 4));
        const caption = neighbours[q]!.map((nb) => `${nb.score.toFixed(3)}${labelled ? ` (${index.labels[nb.index]})` : ''}`).join(' ');
        sections.push({ title: `${query.paths[q]}${labelled ? ` — label ${query.labels[q]}` : ''}`, items: [{ src: file, caption: `query | neighbours: ${caption}` }] });
      }
      const summary = metrics
        ? `mAP ${metrics.mAP.toFixed(2)} (depth ${metrics.depth}), ${recallKs.map((r) => `recall@${r} ${metrics.recallAt[r]!.toFixed(2)}`).join(', ')}, over ${metrics.queriesWithRelevant} queries`
        : 'no labels: no metrics';
      writeHtmlPage(join(o.out, 'index.html'), `Retrieval — ${index.meta.model}`, sections, `${o.approx ? 'approximate (usearch HNSW)' : 'exact'} cosine search of ${query.features.rows} queries in ${index.features.rows} images${selfQuery ? ' (leave-one-out)' : ''} in ${seconds.toFixed(2)} s. ${summary}.`);
      process.stdout.write(`${summary}\nsearch ${seconds.toFixed(2)} s; wrote ${join(o.out, 'index.html')}\n`);
    });
}
