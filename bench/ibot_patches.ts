// Are the masked-patch (iBOT) features of a DINOv2 run meaningful? For a run folder (dinots train --recipe dinov2 on
// MNIST), compares the teacher backbone at initialisation (rebuilt from the run's seed: student and teacher start
// equal) with the trained teacher of checkpoint.safetensors:
//   1. the iBOT loss logged during training (mean of the first and last tenth of metrics.jsonl);
//   2. a held-out iBOT loss under fixed conditions: 64 test digits, the same seeded masks, teacher temperature 0.07,
//      Sinkhorn-Knopp targets (no center, so init and trained are comparable), student and teacher of that stage;
//   3. patch-level k-NN on the patch tokens (k=20, T=0.07): foreground vs background (a patch is foreground when its
//      mean intensity > 0.3; balanced accuracy), and the digit class of foreground patches (a patch must know which
//      digit it belongs to); raw patch pixels as the baseline.
//   npx tsx bench/ibot_patches.ts runs/dinov2_mnist/v2_nano [--bank 200] [--queries 100]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, type Tensor } from '../src/backend/tf.js';
import { initBackend } from '../src/backend/select.js';
import { buildEvalBatch } from '../src/data/batch.js';
import { parseDatasetSpec } from '../src/data/datasets.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/data/image.js';
import { knnEvaluate } from '../src/eval/knn.js';
import { makeMatrix } from '../src/util/matrix.js';
import { IBOTPatchLoss } from '../src/ssl/ibot_patch_loss.js';
import { collateMasks } from '../src/ssl/collate.js';
import { MaskingGenerator } from '../src/ssl/masking.js';
import { Rng } from '../src/util/rng.js';
import { resolveV2Config } from '../src/train/dinov2_config.js';
import { buildV2Networks, loadV2State, type V2Network } from '../src/train/dinov2_networks.js';
import { loadTrainCheckpoint } from '../src/train/run_checkpoint.js';
import type { YamlMap } from '../src/train/yaml_config.js';

const run = process.argv[2];
if (!run) throw new Error('usage: npx tsx bench/ibot_patches.ts <dinov2 run folder> [--bank N] [--queries N]');
const arg = (n: string, d: number) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
await initBackend();
const { recipe, ...saved } = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as Record<string, unknown>;
if (recipe !== 'dinov2') throw new Error(`${run} is not a dinov2 run (recipe ${String(recipe)})`);
const cfg = resolveV2Config(null, [saved as YamlMap]);
const G = cfg.crops.global_crops_size;
const p = cfg.student.patch_size;
const grid = G / p;
const N = grid * grid;

// ---- 1. logged iBOT loss ----
const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ibot_loss: number });
const tenth = Math.max(1, Math.floor(metrics.length / 10));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const logged = { first_tenth: mean(metrics.slice(0, tenth).map((m) => m.ibot_loss)), last_tenth: mean(metrics.slice(-tenth).map((m) => m.ibot_loss)), steps: metrics.length };

// ---- networks: init (rebuilt) and trained (checkpoint) ----
const init = buildV2Networks(cfg);
const trained = buildV2Networks(cfg);
const ck = loadTrainCheckpoint(join(run, 'checkpoint.safetensors'));
loadV2State(trained.student, ck.student, 'student');
loadV2State(trained.teacher, ck.teacher, 'teacher');
for (const n of [init, trained]) for (const net of [n.student, n.teacher]) net.backbone.eval();

// ---- data: eval crops of test digits (queries / held-out batch) and train digits (bank) ----
const evalTf = { cropSize: G, resizeSize: Math.round((G * 256) / 224) };
const nBank = arg('bank', 200);
const nQuery = arg('queries', 100);
const bank = await buildEvalBatch(await parseDatasetSpec('mnist:train'), evalTf, Array.from({ length: nBank }, (_, i) => i * 7));
const query = await buildEvalBatch(await parseDatasetSpec('mnist:test'), evalTf, Array.from({ length: Math.max(nQuery, 64) }, (_, i) => i * 5));

/** Per patch: mean raw intensity (channel 0 un-normalised) and the raw pixels. */
function patchPixels(crops: Float32Array, n: number): { fg: Uint8Array; raw: Float32Array } {
  const fg = new Uint8Array(n * N);
  const raw = new Float32Array(n * N * p * p);
  for (let b = 0; b < n; b++) {
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        let s = 0;
        const k = b * N + gy * grid + gx;
        for (let y = 0; y < p; y++) {
          for (let x = 0; x < p; x++) {
            const v = crops[b * 3 * G * G + (gy * p + y) * G + gx * p + x]! * IMAGENET_STD[0]! + IMAGENET_MEAN[0]!;
            raw[k * p * p + y * p + x] = v;
            s += v;
          }
        }
        fg[k] = s / (p * p) > 0.3 ? 1 : 0;
      }
    }
  }
  return { fg, raw };
}

function patchFeatures(net: V2Network, crops: Float32Array, n: number): Float32Array {
  return tf.tidy(() => net.backbone.forwardFeatures(tf.tensor(crops.subarray(0, n * 3 * G * G), [n, 3, G, G])).patchTokens.dataSync() as Float32Array);
}

function knnPredict(bankF: Float32Array, bankY: Int32Array, qF: Float32Array, qY: Int32Array, d: number): { top1: number; meanPerClass: number } {
  const r = knnEvaluate(makeMatrix(bankY.length, d, bankF), bankY, makeMatrix(qY.length, d, qF), qY, { k: 20, T: 0.07 });
  return { top1: r.results[0]!.top1, meanPerClass: r.results[0]!.meanPerClassTop1 };
}

function rows(src: Float32Array, d: number, keep: (i: number) => boolean, n: number): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (keep(i)) for (let j = 0; j < d; j++) out.push(src[i * d + j]!);
  return Float32Array.from(out);
}

const bp = patchPixels(bank.crops[0]!, nBank);
const qp = patchPixels(query.crops[0]!, nQuery);
const bankDigit = Int32Array.from({ length: nBank * N }, (_, i) => bank.labels[Math.floor(i / N)]!);
const queryDigit = Int32Array.from({ length: nQuery * N }, (_, i) => query.labels[Math.floor(i / N)]!);

function patchKnn(bf: Float32Array, qf: Float32Array, d: number) {
  const fgbg = knnPredict(bf, Int32Array.from(bp.fg), qf, Int32Array.from(qp.fg), d);
  const digit = knnPredict(
    rows(bf, d, (i) => bp.fg[i] === 1, nBank * N), bankDigit.filter((_, i) => bp.fg[i] === 1),
    rows(qf, d, (i) => qp.fg[i] === 1, nQuery * N), queryDigit.filter((_, i) => qp.fg[i] === 1), d,
  );
  return { fg_bg_balanced_acc: +fgbg.meanPerClass.toFixed(2), fg_patch_digit_top1: +digit.top1.toFixed(2) };
}

// ---- 2. held-out iBOT loss under fixed conditions ----
function heldOutIbot(n: { student: V2Network; teacher: V2Network }): number {
  const B = 64;
  const gen = new MaskingGenerator({ inputSize: grid, maxNumPatches: 0.5 * N });
  const masks = collateMasks(B, N, gen, new Rng([1234]), { maskRatioMinMax: cfg.ibot.mask_ratio_min_max, maskProbability: 1 });
  const loss = new IBOTPatchLoss((n.student.ibot_head ?? n.student.dino_head).lastLayer.weightV.shape[0]!);
  const v = tf.tidy(() => {
    const x = tf.tensor(query.crops[0]!.subarray(0, B * 3 * G * G), [B, 3, G, G]);
    const idx = tf.tensor1d(masks.maskIndices, 'int32');
    const pick = (t: Tensor) => tf.gather(t.reshape([B * N, -1]), idx);
    const tHead = n.teacher.ibot_head ?? n.teacher.dino_head;
    const sHead = n.student.ibot_head ?? n.student.dino_head;
    const t = loss.sinkhornKnoppTeacher(tHead.forward(pick(n.teacher.backbone.forwardFeatures(x).patchTokens)), 0.07, masks.nMaskedPatches);
    const s = sHead.forward(pick(n.student.backbone.forwardFeatures(x, tf.tensor2d(Float32Array.from(masks.data), masks.shape)).patchTokens));
    return loss.forwardMasked(s, t, masks, { masksWeight: masks.masksWeight }).dataSync()[0]!;
  });
  loss.dispose();
  return v;
}

const D = cfg.student.arch ? init.teacher.backbone.config.embedDim : 0;
const result = {
  run,
  logged_ibot_loss: logged,
  held_out_ibot_loss: { init: +heldOutIbot(init).toFixed(4), trained: +heldOutIbot(trained).toFixed(4) },
  patch_knn: {
    protocol: `patch tokens of ${nBank} train digits (bank, ${nBank * N} patches) and ${nQuery} test digits (queries); k=20, T=0.07; foreground = mean intensity > 0.3`,
    raw_pixels: patchKnn(bp.raw, qp.raw, p * p),
    init_teacher: patchKnn(patchFeatures(init.teacher, bank.crops[0]!, nBank), patchFeatures(init.teacher, query.crops[0]!, nQuery), D),
    trained_teacher: patchKnn(patchFeatures(trained.teacher, bank.crops[0]!, nBank), patchFeatures(trained.teacher, query.crops[0]!, nQuery), D),
  },
};
console.log(JSON.stringify(result, null, 1));
