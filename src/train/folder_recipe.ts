// The recipe for a folder nobody has tuned: look at the images (size, colour, bright-on-dark symbols or photos) and
// the time budget, and pick crop sizes, patch size and augmentations from principles that hold across data sets:
//  - tokens: about 7×7 patches on a global crop in short runs (the cost of a step grows with the square of the token
//    count; the ViT needs a grid, not a handful of tokens); the patch is the standard size nearest that;
//  - the global crop is the images' own size (never upsampled past it), capped by the budget;
//  - local crops keep the official ratio to the global side (96/224), with at least 3×3 patches (measured on MNIST:
//    6×20 px locals gained ~2 points of k-NN per image seen but cost 1.6× the step, a loss at equal time);
//  - augmentations are the official ones, except those that change what a symbol is: flips (b ≠ d) and solarization
//    (it inverts the strokes) are off for bright-on-dark grayscale images, and the blur is sized to the crop;
//  - the model, head and schedules are the recipe's (presets.ts), sized for CPU budgets.
// Every choice is a config layer in main_dino.py's names, so a flag given by the user overrides it.
import { parseDatasetSpec } from '../data/datasets.js';
import { profileDataset, type DatasetProfile } from '../data/profile.js';
import type { ConfigLayer } from './config_layers.js';
import { DINO_MNIST } from './presets.js';

export interface FolderRecipe {
  layer: ConfigLayer;
  /** One line per choice: what and why. */
  reasons: string[];
  profile: DatasetProfile;
}

const PATCHES = [2, 4, 8, 14, 16];

/** The global crop side allowed by a budget of `minutes` (null: planned by epochs, no cap below 224). */
export function budgetCap(minutes: number | null): number {
  if (minutes === null || minutes > 240) return 224;
  return minutes > 30 ? 128 : 64;
}

/** The choices for images like `p` and a budget of `minutes`. */
export function folderRecipe(p: DatasetProfile, minutes: number | null): FolderRecipe {
  const reasons: string[] = [];
  const cap = budgetCap(minutes);
  const side = Math.max(8, Math.min(p.medianShortSide, cap));
  const patch = PATCHES.reduce((best, q) => (Math.abs(side / q - 7) < Math.abs(side / best - 7) ? q : best));
  const global = patch * Math.max(2, Math.round(side / patch));
  const local = patch * Math.max(3, Math.round((0.43 * global) / patch));
  reasons.push(
    `global crops ${global} px: the images' median short side is ${p.medianShortSide} px` +
      `${p.medianShortSide > cap ? `, capped at ${cap} px for a ${minutes === null ? 'run planned by epochs' : `${minutes}-minute budget`}` : ''}`,
    `patch ${patch}: ${global / patch}x${global / patch} tokens per global crop (about 7x7 keeps steps cheap and gives the attention a grid)`,
    `local crops ${local} px: the official 96/224 of the global side, at least 3x3 patches (${local / patch}x${local / patch})`,
  );
  // The default recipe's model, as main_dino.py's vit_tiny narrowed to its size: its pos-embed grid is the crop's.
  const m = DINO_MNIST.student;
  const layer: ConfigLayer = {
    arch: 'vit_tiny', embed_dim: m.embed_dim, depth: m.depth, num_heads: m.num_heads,
    patch_size: patch, global_crop_size: global, local_crop_size: local, color_augment: true,
  };
  const symbols = p.grayscale && p.darkBackground;
  if (symbols) {
    Object.assign(layer, { flip_p: 0, solarize_p: 0, blur_p: [0.5, 0.5, 0.3] });
    reasons.push('bright strokes on a dark background in grayscale (digits, letters, scans): no flips (they change what a symbol is) and no solarization (it inverts the strokes); brightness/contrast jitter stays, and blur on half the global crops instead of always on the first (a blurred thin stroke is gone)');
  } else {
    reasons.push(`${p.grayscale ? 'grayscale photos' : 'colour images'}: the official augmentations (flip, colour jitter, grayscale, blur, solarization)`);
  }
  if (global < 112) {
    layer.blur_sigma = [0.1, 1];
    reasons.push(`blur sigma 0.1-1 px: the official 0.1-2 px is for 224 px crops`);
  }
  return { layer, reasons, profile: p };
}

/** Profiles the images of `spec` and picks the recipe; `log` gets one line per choice. */
export async function folderRecipeFor(spec: string, minutes: number | null, log: (line: string) => void = () => {}): Promise<FolderRecipe> {
  const ds = await parseDatasetSpec(spec);
  const p = await profileDataset(ds);
  const r = folderRecipe(p, minutes);
  log(`${spec}: ${p.count} images (${p.sampled} looked at): ${p.medianShortSide}x${p.medianLongSide} px median, ${p.grayscale ? 'grayscale' : 'colour'}${p.darkBackground ? ', dark background' : ''}${p.classes ? `, ${p.classes} classes` : ''}. Picked:`);
  for (const line of r.reasons) log(`  - ${line}`);
  log('  (every choice is a main_dino.py flag: give it to override, e.g. --global_crop_size 64 --flip_p 0.5)');
  return r;
}
