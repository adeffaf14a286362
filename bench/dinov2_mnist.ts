// The DINOv2 recipe and distillation on built-in MNIST, each run with a wall-clock budget:
//   1. dinov2  : DINOv2 recipe, preset mnist-tiny (ViT nano p4, 96-d, depth 4)          → runs/<tag>/v2_nano
//   2. dino    : DINO v1 recipe, same arch / batch / crops / budget                        → runs/<tag>/v1_nano
//   3. teacher : DINOv2 recipe, preset mnist-small (ViT micro p4, 192-d, depth 6)           → runs/<tag>/v2_teacher
//   4. distill : frozen teacher (3) → nano student (same budget as 1, which is its from-scratch baseline)
//                                                                                             → runs/<tag>/distill_nano
// Prints one JSON summary (k-NN top-1 before/after, iterations, images/s) and writes it to runs/<tag>/summary.json.
//   npx tsx bench/dinov2_mnist.ts [--minutes 4] [--teacher-minutes 6] [--batch 32] [--tag dinov2_mnist] [--only dinov2,dino,teacher,distill]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainDinov2Run, disposeRunNetworks, type V2RunResult } from '../src/train/dinov2_run.js';
import { distillRun } from '../src/train/distill.js';
import { trainRun, disposeNetworks } from '../src/train/run.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const minutes = Number(arg('minutes', '4'));
const teacherMinutes = Number(arg('teacher-minutes', '6'));
const root = join('runs', arg('tag', 'dinov2_mnist'));
const only = new Set(arg('only', 'dinov2,dino,teacher,distill').split(','));
mkdirSync(root, { recursive: true });
const batch = Number(arg('batch', '32'));
const knn = { knn_train: 'mnist:train', knn_test: 'mnist:test', knn_train_size: 5000, knn_test_size: 1000, knn_evals: 1 };
// The same batch for every run (the presets use 64); small batches give more steps in a short budget on 2 cores.
const v2 = (minutes: number) => [{ train: { batch_size_per_gpu: batch }, run: { minutes, ...knn } }];
// Earlier entries of the same tag are kept (runs can be redone one at a time with --only).
const summaryPath = join(root, 'summary.json');
const summary: Record<string, unknown> = { ...(existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown>) : {}), minutes, teacherMinutes, batch };

function v2Summary(r: V2RunResult) {
  return {
    status: r.status, iterations: r.iteration, knn: r.knn, teacher_knn: r.teacherKnn, raw_pixels: r.knnRawPixels,
    images_per_s: +r.imagesPerSecond.toFixed(1), train_s: +r.trainSeconds.toFixed(0), backend: r.backend,
  };
}
const save = () => writeFileSync(summaryPath, `${JSON.stringify(summary, null, 1)}\n`);
// A redone run starts from an empty folder.
for (const [k, dir] of [['dinov2', 'v2_nano'], ['dino', 'v1_nano'], ['teacher', 'v2_teacher'], ['distill', 'distill_nano']]) if (only.has(k!)) rmSync(join(root, dir!), { recursive: true, force: true });

if (only.has('dinov2')) {
  const r = await trainDinov2Run('mnist-tiny', v2(minutes), { out: join(root, 'v2_nano'), progress: false });
  summary.dinov2_nano = v2Summary(r);
  disposeRunNetworks(r.nets);
  save();
}
if (only.has('dino')) {
  // The v1 recipe with the same model, batch, crops and k-NN protocol.
  const r = await trainRun(
    { arch: 'vit_nano_p4_28', patch_size: 4, out_dim: 1024, head_hidden_dim: 512, head_bottleneck_dim: 128, batch_size_per_gpu: batch,
      local_crops_number: 4, global_crop_size: 28, local_crop_size: 12, minutes, ...knn },
    { out: join(root, 'v1_nano'), progress: false },
  );
  summary.dino_nano = { status: r.status, iterations: r.iteration, knn: r.knn, raw_pixels: r.knnRawPixels, images_per_s: +r.imagesPerSecond.toFixed(1) };
  disposeNetworks(r.networks);
  save();
}
if (only.has('teacher')) {
  const r = await trainDinov2Run('mnist-small', v2(teacherMinutes), { out: join(root, 'v2_teacher'), progress: false });
  summary.dinov2_teacher_micro = v2Summary(r);
  disposeRunNetworks(r.nets);
  save();
}
if (only.has('distill')) {
  const teacher = join(root, 'v2_teacher');
  if (!existsSync(join(teacher, 'checkpoint.safetensors'))) throw new Error(`distill needs the teacher run ${teacher} (run with --only teacher first)`);
  const r = await distillRun('mnist-tiny', v2(minutes), { teacher, masking: false }, { out: join(root, 'distill_nano'), progress: false });
  summary.distill_nano = v2Summary(r);
  disposeRunNetworks(r.nets);
  save();
}
console.log(JSON.stringify(summary, null, 1));
