// stats.json and an HTML report of a curation run: seed images, the curated set, duplicate groups, evaluation-set
// overlaps and sample grids per cluster, as PNG grids of thumbnails (sharp) laid out by eval/pictures.ts.
import sharp from 'sharp';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blankImage, grid, writePng, writeHtmlPage, type RGBImage, type HtmlSection } from '../eval/pictures.js';
import { readTable } from './tables.js';
import { readRecord, STEP_NAMES } from './steps.js';

/** Makes a square thumbnail for a path as stored in the tables (a file by default). */
export type ThumbnailSource = (path: string, size: number) => Promise<RGBImage>;

export const fileThumbnail: ThumbnailSource = async (path, size) => {
  const { data, info } = await sharp(path).resize(size, size, { fit: 'cover' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
};

const THUMB = 72;
const MAX_GROUPS = 24;
const MAX_CLUSTERS = 32;
const PER_CLUSTER = 8;

export async function writeReport(work: string, thumbnails: ThumbnailSource = fileThumbnail): Promise<void> {
  const thumb = async (p: string): Promise<RGBImage> => {
    try {
      return await thumbnails(p, THUMB);
    } catch {
      return blankImage(THUMB, THUMB, [200, 60, 60]); // unreadable: a red tile rather than a failed report
    }
  };
  const gridOf = async (paths: string[], file: string, cols = 8): Promise<string> => {
    const imgs = await Promise.all(paths.map(thumb));
    const out = join(work, 'report', file);
    await writePng(out, grid(imgs, cols));
    return out;
  };

  const stats: Record<string, unknown> = { work, generatedAt: new Date().toISOString(), steps: {} };
  const warnings: string[] = [];
  for (const s of STEP_NAMES) {
    const r = readRecord(work, s);
    if (r && s !== 'report') (stats.steps as Record<string, unknown>)[s] = { seconds: r.seconds, finishedAt: r.finishedAt, ...r.summary };
    for (const w of (r?.summary.warnings as string[] | undefined) ?? []) warnings.push(`${s}: ${w}`);
  }
  const sections: HtmlSection[] = [];
  // The steps' warnings first: a result that is not worth using says so at the top.
  if (warnings.length) sections.push({ title: `Warnings (${warnings.length})`, text: warnings.join(' | '), items: [] });

  if (existsSync(join(work, 'seed.arrow'))) {
    const seeds = readTable(join(work, 'seed.arrow')).strings('path');
    sections.push({ title: `Seed images (${seeds.length}; first 32)`, items: [{ src: await gridOf(seeds.slice(0, 32), 'seeds.png'), caption: 'seed set' }] });
  }

  const curated = readTable(join(work, 'curated.arrow'));
  const cPaths = curated.strings('path');
  const cScore = curated.float32('score');
  const cReason = curated.strings('reason');
  sections.push({
    title: `Curated set (${cPaths.length} images; best 64 by score)`,
    text: `reasons: ${[...new Set(cReason)].map((r) => `${r} ${cReason.filter((x) => x === r).length}`).join(', ')}; scores ${cScore.length ? `${cScore.reduce((m, v) => Math.min(m, v), Infinity).toFixed(3)} to ${cScore.reduce((m, v) => Math.max(m, v), -Infinity).toFixed(3)}` : 'n/a'}`,
    items: [{ src: await gridOf(cPaths.slice(0, 64), 'curated.png'), caption: 'curated (rows of 8, best first)' }],
  });
  (stats as Record<string, unknown>).curated = cPaths.length;

  if (existsSync(join(work, 'dedup.arrow'))) {
    const d = readTable(join(work, 'dedup.arrow'));
    const paths = d.strings('path');
    const group = d.int32('group');
    const keeper = d.bools('keeper');
    const status = d.strings('status');
    const evalScore = d.float32('eval_score');
    const evalMatch = d.strings('eval_match');
    const members = new Map<number, number[]>();
    group.forEach((g, i) => g >= 0 && pushTo(members, g, i));
    const groups = [...members.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
    const sizeHist: Record<string, number> = {};
    for (const [, m] of groups) sizeHist[m.length] = (sizeHist[m.length] ?? 0) + 1;
    (stats as Record<string, unknown>).duplicateGroupSizes = sizeHist;
    const items = [];
    for (const [g, m] of groups.slice(0, MAX_GROUPS)) {
      const ordered = [...m.filter((i) => keeper[i]), ...m.filter((i) => !keeper[i])];
      items.push({ src: await gridOf(ordered.slice(0, 16).map((i) => paths[i]!), `dup_${g}.png`), caption: `group ${g}: ${m.length} images, kept first (${paths[ordered[0]!]})` });
    }
    sections.push({ title: `Duplicate groups (${groups.length}; largest ${Math.min(MAX_GROUPS, groups.length)})`, text: 'The first image of each grid is the one kept.', items });
    const overlaps = status.map((s, i) => [s, i] as const).filter(([s]) => s === 'eval-overlap').map(([, i]) => i);
    overlaps.sort((a, b) => evalScore[b]! - evalScore[a]!);
    const pairs = [];
    for (const i of overlaps.slice(0, MAX_GROUPS)) {
      pairs.push({ src: await gridOf([paths[i]!, evalMatch[i]!], `eval_${i}.png`, 2), caption: `pool ${paths[i]} ~ eval ${evalMatch[i]} (${evalScore[i]!.toFixed(3)})` });
    }
    if (overlaps.length) sections.push({ title: `Removed for overlapping evaluation sets (${overlaps.length})`, text: 'left: pool image, right: evaluation image', items: pairs });
  }

  if (existsSync(join(work, 'clusters.arrow')) && existsSync(join(work, 'pool.arrow'))) {
    const level0 = readTable(join(work, 'clusters.arrow')).int32('level0');
    const paths = readTable(join(work, 'pool.arrow')).strings('path');
    const members = new Map<number, number[]>();
    level0.forEach((c, i) => c >= 0 && pushTo(members, c, i));
    const bySize = [...members.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
    const sizes = bySize.map(([, m]) => m.length);
    (stats as Record<string, unknown>).clusterSizes = { clusters: sizes.length, min: sizes[sizes.length - 1], median: sizes[Math.floor(sizes.length / 2)], max: sizes[0] };
    const items = [];
    for (const [c, m] of bySize.slice(0, MAX_CLUSTERS)) {
      // An even spread over the cluster's members (deterministic).
      const step = Math.max(1, Math.floor(m.length / PER_CLUSTER));
      const pick = m.filter((_, j) => j % step === 0).slice(0, PER_CLUSTER);
      items.push({ src: await gridOf(pick.map((i) => paths[i]!), `cluster_${c}.png`), caption: `cluster ${c}: ${m.length} images` });
    }
    sections.push({ title: `Pool clusters (${sizes.length}; largest ${Math.min(MAX_CLUSTERS, sizes.length)})`, items });
  }

  writeFileSync(join(work, 'stats.json'), JSON.stringify(stats, null, 2));
  const intro = `Work folder ${work}. Steps: ${Object.entries(stats.steps as Record<string, { seconds: number }>)
    .map(([s, r]) => `${s} ${r.seconds.toFixed(1)} s`)
    .join(', ')}. Full numbers in stats.json.`;
  writeHtmlPage(join(work, 'report', 'index.html'), 'dinots curation report', sections, intro);
}

function pushTo(m: Map<number, number[]>, key: number, v: number): void {
  const list = m.get(key);
  if (list) list.push(v);
  else m.set(key, [v]);
}

/** Reads stats.json of a finished run. */
export function readStats(work: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(work, 'stats.json'), 'utf8')) as Record<string, unknown>;
}
