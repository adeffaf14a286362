// Are the masked-patch (iBOT) features of a DINOv2 run meaningful? For a run folder (dinots train --recipe dinov2 on
// MNIST), compares the teacher backbone at initialisation (rebuilt from the run's seed: student and teacher start
// equal) with the trained teacher of checkpoint.safetensors:
//   1. the iBOT loss logged during training (mean of the first and last tenth of metrics.jsonl);
//   2. a held-out iBOT loss under fixed conditions: 64 test digits, the same seeded masks, teacher temperature 0.07,
//      Sinkhorn-Knopp targets (no center, so init and trained are comparable), student and teacher of that stage;
//   3. patch-level k-NN on the patch tokens (k=20, T=0.07): foreground vs background (a patch is foreground when its
//      mean intensity > 0.3; balanced accuracy), and the digit class of foreground patches (a patch must know which
//      digit it belongs to); raw patch pixels as the baseline;
//   4. masked-patch k-NN, the iBOT task itself: the teacher backbone sees each digit with block masks (same seeded masks
//      for every run, every image masked at 30-50%); the output tokens at the masked positions, built only from the mask
//      token, the position and the visible context, are classified by k-NN as the hidden patch's foreground/background
//      and, for hidden foreground patches, the digit. At initialisation they know little more than the position.
//      masked_to_visible classifies the same masked-position tokens against a bank of visible patch tokens: the iBOT
//      objective asks a masked token to predict the visible token's prototype distribution.
// Several runs (e.g. with iBOT and with ibot.loss_weight=0, same budget) are measured one after the other.
//   npx tsx bench/ibot_patches.ts <run> [<run> ...] [--bank 200] [--queries 100]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, type Tensor } from '../src/backend/tf.js';
import { initBackend } from '../src/backend/select.js';
import { buildEvalBatch } from '../src/data/batch.js';
import { parseDatasetSpec } from '../src/data/datasets.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/data/image.js';
import { knnEvaluate } from '../src/eval/knn.js';
import { makeMatrix, selectRows, type Matrix } from '../src/util/matrix.js';
import { IBOTPatchLoss } from '../src/ssl/ibot_patch_loss.js';
import { collateMasks, type CollatedMasks } from '../src/ssl/collate.js';
import { MaskingGenerator } from '../src/ssl/masking.js';
import { Rng } from '../src/util/rng.js';
import type { SSLConfig } from '../src/train/config.js';
import { resolveConfig, type ConfigLayer } from '../src/train/config_layers.js';
import { buildNetworks, disposeNetwork, loadNetworkState, type SSLNetwork } from '../src/train/networks.js';
import { loadTrainCheckpoint } from '../src/train/run_checkpoint.js';

const flags = new Set(['--bank', '--queries']);
const runs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !flags.has(all[i - 1] ?? ''));
if (!runs.length) throw new Error('usage: npx tsx bench/ibot_patches.ts <dinov2 run folder> [<run> ...] [--bank N] [--queries N]');
const arg = (n: string, d: number) => {
  const i = process.argv.indexOf(`--${n}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
await initBackend();
const nBank = arg('bank', 200);
const nQuery = Math.max(arg('queries', 100), 64);
const mnistTrain = await parseDatasetSpec('mnist:train');
const mnistTest = await parseDatasetSpec('mnist:test');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const r2 = (x: number) => +x.toFixed(2);

/** k-NN top-1 and mean per-class top-1 (the features are L2-normalised inside knnEvaluate). */
function knnPredict(bank: Matrix, bankY: Int32Array, query: Matrix, queryY: Int32Array): { top1: number; meanPerClass: number } {
  const r = knnEvaluate(bank, bankY, query, queryY, { k: 20, T: 0.07 });
  return { top1: r.results[0]!.top1, meanPerClass: r.results[0]!.meanPerClassTop1 };
}

async function measure(run: string) {
  const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as ConfigLayer;
  if (saved.recipe !== 'dinov2') throw new Error(`${run} is not a dinov2 run (recipe ${String(saved.recipe)})`);
  const cfg: SSLConfig = resolveConfig({ layers: [saved] });
  const G = cfg.crops.global_crops_size;
  const p = cfg.student.patch_size;
  const grid = G / p;
  const N = grid * grid;

  // ---- 1. logged iBOT loss ----
  const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ibot_loss: number; teacher_entropy: number });
  const tenth = Math.max(1, Math.floor(metrics.length / 10));
  const logged = {
    steps: metrics.length,
    ibot_loss: { first_tenth: r2(mean(metrics.slice(0, tenth).map((m) => m.ibot_loss))), last_tenth: r2(mean(metrics.slice(-tenth).map((m) => m.ibot_loss))) },
    teacher_entropy_last_tenth: r2(mean(metrics.slice(-tenth).map((m) => m.teacher_entropy))),
    ln_K: r2(Math.log(cfg.dino.head_n_prototypes)),
  };

  // ---- networks: init (rebuilt from the run's seed) and trained (checkpoint) ----
  const init = buildNetworks(cfg);
  const trained = buildNetworks(cfg);
  const ck = loadTrainCheckpoint(join(run, 'checkpoint.safetensors'));
  loadNetworkState(trained.student, ck.student, 'student');
  loadNetworkState(trained.teacher, ck.teacher, 'teacher');
  // Backbones without drop path; BatchNorm heads with batch statistics, as during training.
  for (const n of [init, trained]) for (const net of [n.student, n.teacher]) {
    net.backbone.eval();
    for (const h of [net.dino_head, net.ibot_head]) h?.train(h.hasBatchNorm);
  }

  // ---- data: eval crops of train digits (bank) and test digits (queries / held-out batch) ----
  const evalTf = { cropSize: G, resizeSize: Math.round((G * 256) / 224) };
  const bank = await buildEvalBatch(mnistTrain, evalTf, Array.from({ length: nBank }, (_, i) => i * 7));
  const query = await buildEvalBatch(mnistTest, evalTf, Array.from({ length: nQuery }, (_, i) => i * 5));

  /** Per patch: foreground flag (mean raw intensity of channel 0 > 0.3) and the raw pixels. */
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
  const bp = patchPixels(bank.crops[0]!, nBank);
  const qp = patchPixels(query.crops[0]!, nQuery);
  const bankDigit = Int32Array.from({ length: nBank * N }, (_, i) => bank.labels[Math.floor(i / N)]!);
  const queryDigit = Int32Array.from({ length: nQuery * N }, (_, i) => query.labels[Math.floor(i / N)]!);

  // Every image masked (30-50% of its patches), the same masks for every run and stage.
  const gen = new MaskingGenerator({ inputSize: grid, maxNumPatches: 0.5 * N });
  const probeMasks = (n: number, seed: number) => collateMasks(n, N, gen, new Rng([seed]), { maskRatioMinMax: [0.3, 0.5], maskProbability: 1 });
  const bankMasks = probeMasks(nBank, 11);
  const queryMasks = probeMasks(nQuery, 12);

  /** Patch tokens [n·N, D] of a backbone, optionally with masks. */
  function patchTokens(net: SSLNetwork, crops: Float32Array, n: number, masks?: CollatedMasks): Float32Array {
    return tf.tidy(() => {
      const x = tf.tensor(crops.subarray(0, n * 3 * G * G), [n, 3, G, G]);
      const m = masks ? tf.tensor2d(Float32Array.from(masks.data), masks.shape) : null;
      return net.backbone.forwardFeatures(x, m).patchTokens.dataSync() as Float32Array;
    });
  }

  /** k-NN over patches: fg/bg (balanced accuracy) of the selected patches, digit class of the selected fg ones. */
  function patchKnn(bf: Float32Array, qf: Float32Array, d: number, bankSel: (i: number) => boolean = () => true, querySel: (i: number) => boolean = () => true) {
    const bIdx = Array.from({ length: nBank * N }, (_, i) => i).filter(bankSel);
    const qIdx = Array.from({ length: nQuery * N }, (_, i) => i).filter(querySel);
    const bankM = makeMatrix(nBank * N, d, bf);
    const queryM = makeMatrix(nQuery * N, d, qf);
    const fgbg = knnPredict(selectRows(bankM, bIdx), Int32Array.from(bIdx, (i) => bp.fg[i]!), selectRows(queryM, qIdx), Int32Array.from(qIdx, (i) => qp.fg[i]!));
    const bFg = bIdx.filter((i) => bp.fg[i] === 1);
    const qFg = qIdx.filter((i) => qp.fg[i] === 1);
    const digit = knnPredict(selectRows(bankM, bFg), Int32Array.from(bFg, (i) => bankDigit[i]!), selectRows(queryM, qFg), Int32Array.from(qFg, (i) => queryDigit[i]!));
    return { fg_bg_balanced_acc: r2(fgbg.meanPerClass), fg_patch_digit_top1: r2(digit.top1), patches: `${bIdx.length} bank / ${qIdx.length} queries` };
  }

  // ---- 2. held-out iBOT loss under fixed conditions ----
  function heldOutIbot(n: { student: SSLNetwork; teacher: SSLNetwork }): number {
    const B = 64;
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

  const D = init.teacher.backbone.config.embedDim;
  const stage = (n: { teacher: SSLNetwork }) => {
    const bankVisible = patchTokens(n.teacher, bank.crops[0]!, nBank);
    const queryMasked = patchTokens(n.teacher, query.crops[0]!, nQuery, queryMasks);
    return {
      patch_tokens: patchKnn(bankVisible, patchTokens(n.teacher, query.crops[0]!, nQuery), D),
      masked_positions: patchKnn(
        patchTokens(n.teacher, bank.crops[0]!, nBank, bankMasks), queryMasked, D,
        (i) => bankMasks.data[i] === 1, (i) => queryMasks.data[i] === 1,
      ),
      // The iBOT target itself: a masked position's token should look like the token the patch gets when visible.
      masked_to_visible: patchKnn(bankVisible, queryMasked, D, () => true, (i) => queryMasks.data[i] === 1),
    };
  };
  const result = {
    run,
    ibot_loss_weight: cfg.ibot.loss_weight,
    logged,
    held_out_ibot_loss: { init: r2(heldOutIbot(init)), trained: r2(heldOutIbot(trained)) },
    raw_pixels: patchKnn(bp.raw, qp.raw, p * p),
    init: stage(init),
    trained: stage(trained),
  };
  for (const n of [init, trained]) for (const net of [n.student, n.teacher]) disposeNetwork(net);
  return result;
}

console.log(`protocol: ${nBank} train digits (bank) and ${nQuery} test digits (queries), patch tokens of the teacher backbone; k=20, T=0.07; foreground = mean intensity > 0.3`);
for (const run of runs) console.log(JSON.stringify(await measure(run), null, 1));
