// What a folder of images looks like, from a seeded sample: how many, how large, colour or grayscale, and whether
// the object is bright on a dark background (digits, scans) — what a training recipe needs to pick its crop sizes,
// patch size and augmentations for data it has never seen.
import type { Dataset } from './datasets.js';
import { Rng } from '../util/rng.js';

export interface DatasetProfile {
  name: string;
  count: number;
  /** Images read for the statistics. */
  sampled: number;
  medianShortSide: number;
  medianLongSide: number;
  /** At least 90% of the sampled images have R = G = B everywhere. */
  grayscale: boolean;
  /** The mean border brightness is below 0.2 of full scale in at least 90% of the sample (dark background). */
  darkBackground: boolean;
  classes: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Reads up to `samples` seeded images of `ds` (decoding only those) and summarises them. */
export async function profileDataset(ds: Dataset, { samples = 64, seed = 0 } = {}): Promise<DatasetProfile> {
  if (ds.length === 0) throw new Error(`${ds.name}: no images`);
  const n = Math.min(samples, ds.length);
  const idx = new Rng([seed, 0x9f]).permutation(ds.length).slice(0, n);
  const short: number[] = [];
  const long: number[] = [];
  let gray = 0;
  let dark = 0;
  for (const i of idx) {
    const { image: im } = await ds.get(i);
    short.push(Math.min(im.width, im.height));
    long.push(Math.max(im.width, im.height));
    let isGray = true;
    for (let p = 0; p < im.width * im.height && isGray; p++) {
      const o = 3 * p;
      isGray = im.data[o] === im.data[o + 1] && im.data[o] === im.data[o + 2];
    }
    if (isGray) gray++;
    let sum = 0;
    let cnt = 0;
    for (let y = 0; y < im.height; y++) {
      for (let x = 0; x < im.width; x++) {
        if (y !== 0 && y !== im.height - 1 && x !== 0 && x !== im.width - 1) continue;
        const o = 3 * (y * im.width + x);
        sum += (im.data[o]! + im.data[o + 1]! + im.data[o + 2]!) / 3;
        cnt++;
      }
    }
    if (sum / cnt < 0.2 * 255) dark++;
  }
  return {
    name: ds.name, count: ds.length, sampled: n, medianShortSide: median(short), medianLongSide: median(long),
    grayscale: gray >= 0.9 * n, darkBackground: dark >= 0.9 * n, classes: ds.classes.length,
  };
}
