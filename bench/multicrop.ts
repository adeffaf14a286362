// Multi-crop throughput: npm run bench -- multicrop [--images N] [--workers 1,2]
//   1. in-thread augmentation only (no decode): MNIST digits at 28/14 px, a 500x375 photo at 224/96 (v1 and v2 presets)
//   2. MultiCropLoader end to end (read + decode + augment + stack) over a folder of 500x375 JPEGs, per worker count
// Photos: Debian python3-skimage's samples when installed, else a synthetic photo-like image.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageFolder, MnistDataset } from '../src/data/datasets.js';
import { decodeImage } from '../src/data/decode.js';
import { MultiCropLoader } from '../src/data/loader.js';
import { DataAugmentationDINO, dinoV1Augmentation, dinoV2Augmentation, type MultiCropConfig } from '../src/data/multicrop.js';
import { Rng } from '../src/util/rng.js';
import { photoLike } from '../test/data/helpers.js';


function rate(name: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(5, n); i++) fn(i); // warm-up (JIT)
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  // CPU time is the honest number on a shared machine: wall time grows with other processes' load.
  console.log(`${name}: ${(n / s).toFixed(1)} img/s wall, ${(n / cpu).toFixed(1)} img/s per CPU-second (${((1000 * cpu) / n).toFixed(2)} ms CPU/img, 1 thread)`);
}

const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
const photos = ['chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg'].map((f) => join(SKIMAGE, f)).filter(existsSync);
async function photoJpegs(): Promise<Buffer[]> {
  if (photos.length === 0) {
    const p = photoLike(500, 375);
    console.log('(no skimage photos: using a synthetic 500x375 image)');
    return [await sharp(p.data, { raw: { width: 500, height: 375, channels: 3 } }).jpeg({ quality: 90 }).toBuffer()];
  }
  console.log(`photos: ${photos.map((p) => p.split('/').pop()).join(', ')} resized to 500x375`);
  return Promise.all(photos.map((p) => sharp(p).resize(500, 375, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer()));
}

export async function main(args: string[]): Promise<void> {
  const arg = (name: string, dflt: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  const nImages = Number(arg('--images', '96'));
  const workerCounts = arg('--workers', '1,2').split(',').map(Number);

  const mnistCfg: MultiCropConfig = dinoV1Augmentation({ globalCropsSize: 28, localCropsSize: 14 });
  const mnist = new MnistDataset('train', { limit: 2000 });
  const mnistAug = new DataAugmentationDINO(mnistCfg);
  rate('MNIST 2x28 + 8x14, v1 preset', 1000, (i) => mnistAug.apply(mnist.getSync(i).image, new Rng([0, 0, i])));

  const jpegs = await photoJpegs();
  const decoded = await Promise.all(jpegs.map((b) => decodeImage(b)));
  for (const [name, cfg] of [['v1', dinoV1Augmentation()], ['v2', dinoV2Augmentation()]] as const) {
    const aug = new DataAugmentationDINO(cfg);
    rate(`photo 500x375 -> 2x224 + 8x96, ${name} preset (augment only)`, 30, (i) => aug.apply(decoded[i % decoded.length]!, new Rng([0, 0, i])));
  }
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) await decodeImage(jpegs[i % jpegs.length]!);
  console.log(`sharp decode 500x375 JPEG: ${(50 / ((performance.now() - t0) / 1000)).toFixed(1)} img/s (1 in flight)`);

  const dir = mkdtempSync(join(tmpdir(), 'dinots-bench-'));
  try {
    for (let i = 0; i < nImages; i++) writeFileSync(join(dir, `${String(i).padStart(4, '0')}.jpg`), jpegs[i % jpegs.length]!);
    const ds = await ImageFolder.open(dir);
    for (const workers of workerCounts) {
      const loader = new MultiCropLoader(ds, { batchSize: 16, augmentation: dinoV2Augmentation(), workers });
      // Warm-up epoch (worker start-up, tsx, JIT) consumed to the end, so no prefetched work spills into the timing.
      for await (const _ of loader.epoch(0)) void _;
      let images = 0;
      const c0 = process.cpuUsage();
      const start = performance.now();
      for await (const b of loader.epoch(1)) images += b.labels.length;
      const s = (performance.now() - start) / 1000;
      const c = process.cpuUsage(c0);
      const st = loader.stats();
      console.log(
        `loader, ${workers} worker(s), photo folder, v2 2x224 + 8x96, batch 16: ${(images / s).toFixed(1)} img/s wall, ` +
          `${((c.user + c.system) / 1000 / images).toFixed(1)} ms CPU/img (all threads), consumer waited ${st.waitSeconds.toFixed(2)} s of ${s.toFixed(2)} s`,
      );
      await loader.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
