// The DINOv2 recipe and distillation on built-in MNIST, each run with a wall-clock budget:
//   1. dinov2  : DINOv2 recipe (preset mnist-tiny) with the student arch                    → runs/<tag>/v2_student
//   2. dino    : DINO v1 recipe (the `dinots train` defaults) with the student arch, same batch / budget
//                                                                                            → runs/<tag>/v1_student
//   3. teacher : a larger model, DINOv2 or DINO v1 recipe (--teacher-recipe), --teacher-minutes → runs/<tag>/teacher
//   4. distill : frozen teacher (3) → student, same budget as 1 and 2 (its from-scratch baselines)
//                                                                                            → runs/<tag>/distill_student
// Prints one JSON summary (k-NN top-1 before/after, iterations, images/s) and writes it to runs/<tag>/summary.json.
//   npx tsx bench/dinov2_mnist.ts [--minutes 4] [--teacher-minutes 6] [--batch 32] [--tag dinov2_mnist]
//     [--student vit_nano_p4_28] [--teacher vit_micro_p4_28] [--teacher-recipe dinov2|dino] [--distill-masking true|false]
//     [--v2-set section.key=value,...]   (applied to the dinov2 and distill runs)
//     [--distill-set section.key=value,...]   (applied to the distill run only, after --v2-set)
//     [--only dinov2,dino,teacher,distill]
// Archs: the v2 presets' names (vit_mini_p4_28 64-d depth 3, vit_nano_p4_28 96-d depth 4, vit_micro_p4_28 192-d depth 6).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { archSizes } from '../src/models/config.js';
import { dottedOverrides, type ConfigLayer } from '../src/train/config_layers.js';
import { DISTILL_DEFAULTS } from '../src/train/presets.js';
import { trainRun, disposeRunNetworks, type RunResult } from '../src/train/run.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const minutes = Number(arg('minutes', '4'));
const teacherMinutes = Number(arg('teacher-minutes', '6'));
const root = join('runs', arg('tag', 'dinov2_mnist'));
const only = new Set(arg('only', 'dinov2,dino,teacher,distill').split(','));
const studentArch = arg('student', 'vit_nano_p4_28');
const teacherArch = arg('teacher', 'vit_micro_p4_28');
const teacherRecipe = arg('teacher-recipe', 'dinov2');
// The paper's distillation applies iBOT to every patch of the global crops (no masking); masking as in pretraining
// makes a step cheaper (the iBOT head sees only the masked patches), so more steps fit the budget.
const distillMasking = arg('distill-masking', 'false') === 'true';
// Extra config for both DINOv2-loss student runs (from scratch and distilled), as --set pairs, e.g.
// optim.base_lr=0.008,optim.layerwise_decay=1
const v2Set = arg('v2-set', '');
const v2Extra = v2Set ? [dottedOverrides(v2Set.split(','))] : [];
// Extra config for the distilled run only (after --v2-set).
const distillSet = arg('distill-set', '');
const distillExtra = distillSet ? [dottedOverrides(distillSet.split(','))] : [];
for (const a of [studentArch, teacherArch]) archSizes(a, 'arch');
if (teacherRecipe !== 'dinov2' && teacherRecipe !== 'dino') throw new Error('--teacher-recipe: dinov2 or dino');
mkdirSync(root, { recursive: true });
const batch = Number(arg('batch', '32'));
const knn = { knn_train: 'mnist:train', knn_test: 'mnist:test', knn_train_size: 5000, knn_test_size: 1000, knn_evals: 1 };
// The same batch for every run (the presets use 64); small batches give more steps in a short budget on 2 cores.
const v2 = (minutes: number, arch: string): ConfigLayer[] => [{ student: { arch }, train: { batch_size_per_gpu: batch }, run: { minutes, ...knn } }];
/** The dino recipe of `dinots train` with an arch's sizes. */
const v1 = (minutes: number, arch: string) => {
  const a = archSizes(arch, 'arch');
  return { recipe: 'dino' as const, layers: [{ arch: 'vit_nano_p4_28', embed_dim: a.embedDim, depth: a.depth, num_heads: a.numHeads, batch_size_per_gpu: batch, minutes, ...knn }] };
};
const dinov2 = (layers: ConfigLayer[]) => ({ preset: 'mnist-tiny', layers });
// Earlier entries of the same tag are kept (runs can be redone one at a time with --only).
const summaryPath = join(root, 'summary.json');
const summary: Record<string, unknown> = {
  ...(existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown>) : {}),
  minutes, teacherMinutes, batch, student: studentArch,
};

function v2Summary(r: RunResult) {
  return {
    status: r.status, iterations: r.iteration, knn: r.knn, teacher_knn: r.teacherKnn, raw_pixels: r.knnRawPixels,
    images_per_s: +r.imagesPerSecond.toFixed(1), train_s: +r.trainSeconds.toFixed(0), backend: r.backend,
  };
}
const save = () => writeFileSync(summaryPath, `${JSON.stringify(summary, null, 1)}\n`);
// A redone run starts from an empty folder.
for (const [k, dir] of [['dinov2', 'v2_student'], ['dino', 'v1_student'], ['teacher', 'teacher'], ['distill', 'distill_student']]) if (only.has(k!)) rmSync(join(root, dir!), { recursive: true, force: true });

if (only.has('dinov2')) {
  const r = await trainRun(dinov2([...v2(minutes, studentArch), ...v2Extra]), { out: join(root, 'v2_student'), progress: false });
  summary.dinov2_student = { set: v2Set || null, ...v2Summary(r) };
  disposeRunNetworks(r.nets);
  save();
}
if (only.has('dino')) {
  const r = await trainRun(v1(minutes, studentArch), { out: join(root, 'v1_student'), progress: false });
  summary.dino_student = { status: r.status, iterations: r.iteration, knn: r.knn, raw_pixels: r.knnRawPixels, images_per_s: +r.imagesPerSecond.toFixed(1) };
  disposeRunNetworks(r.nets);
  save();
}
if (only.has('teacher')) {
  const out = join(root, 'teacher');
  if (teacherRecipe === 'dinov2') {
    const r = await trainRun(dinov2(v2(teacherMinutes, teacherArch)), { out, progress: false });
    summary.teacher = { arch: teacherArch, recipe: teacherRecipe, ...v2Summary(r) };
    disposeRunNetworks(r.nets);
  } else {
    const r = await trainRun(v1(teacherMinutes, teacherArch), { out, progress: false });
    summary.teacher = { arch: teacherArch, recipe: teacherRecipe, status: r.status, iterations: r.iteration, knn: r.knn, images_per_s: +r.imagesPerSecond.toFixed(1) };
    disposeRunNetworks(r.nets);
  }
  save();
}
if (only.has('distill')) {
  const teacher = join(root, 'teacher');
  if (!existsSync(join(teacher, 'checkpoint.safetensors'))) throw new Error(`distill needs the teacher run ${teacher} (run with --only teacher first)`);
  const distill = { distill: { teacher, masking: distillMasking } };
  const r = await trainRun(dinov2([DISTILL_DEFAULTS, ...v2(minutes, studentArch), ...v2Extra, ...distillExtra, distill]), { out: join(root, 'distill_student'), progress: false });
  summary.distill_student = { masking: distillMasking, set: [v2Set, distillSet].filter(Boolean).join(',') || null, ...v2Summary(r) };
  disposeRunNetworks(r.nets);
  save();
}
console.log(JSON.stringify(summary, null, 1));
