// What a run measures beyond its k-NN monitor: whether the last block's attention finds the object (before and
// after training, on digit-like data), and the final evaluation on the full labelled splits (eval/run_evaluation.ts).
// Both are outside the time budget.
import { buildEvalBatch } from '../data/batch.js';
import { parseDatasetSpec } from '../data/datasets.js';
import { profileDataset } from '../data/profile.js';
import { evaluateRun, type RunEvaluation } from '../eval/run_evaluation.js';
import { brightForeground, objectAttentionJaccard, type ObjectAttentionScore } from '../eval/object_attention.js';
import type { VisionTransformer } from '../models/vit.js';
import type { SSLConfig } from './config.js';
import type { Log } from './run_loop.js';

/** Test images whose attention is scored (the first ones of the labelled test split, or of the data). */
export const ATTENTION_IMAGES = 256;

export interface AttentionProbe {
  crops: Float32Array;
  foreground: Uint8Array[];
  n: number;
  size: number;
  dataset: string;
}

/**
 * The images of the attention score, when the data is bright objects on a dark background (digits, scans): there the
 * object's pixels are known without labels. null for photos (no foreground without masks).
 */
export async function attentionProbe(cfg: SSLConfig, size: number): Promise<AttentionProbe | null> {
  const spec = cfg.run.knn_test ?? cfg.run.data;
  const ds = await parseDatasetSpec(spec);
  const profile = await profileDataset(ds, { samples: 32, seed: cfg.train.seed });
  if (!profile.grayscale || !profile.darkBackground) return null;
  const n = Math.min(ATTENTION_IMAGES, ds.length);
  const b = await buildEvalBatch(ds, { cropSize: size, resizeSize: Math.round((size * 256) / 224) }, Array.from({ length: n }, (_, i) => i));
  return { crops: b.crops[0]!, foreground: brightForeground(b.crops[0]!, n, size), n, size, dataset: spec };
}

export function attentionScore(model: VisionTransformer, p: AttentionProbe): ObjectAttentionScore {
  return objectAttentionJaccard(model, p.crops, p.n, p.size, p.foreground);
}

/**
 * The final evaluation of a finished run on the full knn_train / knn_test splits: every backbone named in
 * `backbones` (the result, and the student), k-NN on CLS and CLS+avgpool, raw pixels, a linear probe, attention.
 */
export async function finalEvaluation(cfg: SSLConfig, backbones: { name: string; model: VisionTransformer }[], size: number, log: Log): Promise<RunEvaluation | null> {
  const r = cfg.run;
  if (!r.final_eval || !r.knn_train || !r.knn_test) return null;
  const [train, test] = [await parseDatasetSpec(r.knn_train), await parseDatasetSpec(r.knn_test)];
  const digits = (await attentionProbe(cfg, size)) !== null;
  log(`final evaluation on the full splits: ${train.length} images of ${r.knn_train} as the bank, ${test.length} of ${r.knn_test} as queries`);
  for (const b of backbones) b.model.eval();
  const ev = await evaluateRun(backbones, {
    train, test, cropSize: size, resizeSize: Math.round((size * 256) / 224), k: r.knn_k, T: r.knn_temperature,
    attentionImages: digits ? ATTENTION_IMAGES : 0, log,
  });
  log(`final evaluation done in ${ev.seconds.toFixed(0)} s`);
  return ev;
}
