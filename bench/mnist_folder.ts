// Writes MNIST as an image folder, the way a user's own data arrives: 28 px grayscale PNGs in one subfolder per class
// (OUT/train/<digit>/*.png, OUT/test/<digit>/*.png), to check that `dinots train --data DIR` fits itself to such
// images and reaches the figure of the built-in MNIST run:
//   npx tsx bench/mnist_folder.ts /tmp/mnist-folder [--train N] [--test N]
//   npx dinots train --data /tmp/mnist-folder/train --knn-train /tmp/mnist-folder/train --knn-test /tmp/mnist-folder/test
import sharp from 'sharp';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MnistDataset } from '../src/data/datasets.js';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--'));
if (!out) throw new Error('usage: npx tsx bench/mnist_folder.ts OUT_DIR [--train N] [--test N]');
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

for (const [split, n] of [['train', opt('--train', 60000)], ['test', opt('--test', 10000)]] as const) {
  const ds = new MnistDataset(split, { limit: n });
  for (let c = 0; c < 10; c++) mkdirSync(join(out, split, String(c)), { recursive: true });
  const t0 = Date.now();
  for (let i = 0; i < ds.length; i++) {
    const s = await ds.get(i);
    const file = join(out, split, String(s.label), `${String(i).padStart(5, '0')}.png`);
    if (existsSync(file)) continue;
    // The dataset gives RGB; a user's digits are one-channel PNGs.
    await sharp(Buffer.from(s.image.data), { raw: { width: s.image.width, height: s.image.height, channels: 3 } }).toColourspace('b-w').png().toFile(file);
  }
  process.stderr.write(`${split}: ${ds.length} images in ${join(out, split)} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}
