// Fixture kind `loss`: the DINO-family losses. The fixture's own tensors/config say which loss and call sequence it is:
//   inputs/x + nn_indices                      -> KoLeo
//   inputs/step0/student_output + config.ncrops -> DINO v1 DINOLoss, consecutive steps (fixture.epochs)
//   inputs/teacher_raw / config.patch_out_dim  -> DINOv2 iBOT patch loss (centering, Sinkhorn, forward_masked, forward)
//   inputs/teacher_out                         -> DINOv2 CLS loss; softmax centering when inputs/center0 is given,
//                                                 Sinkhorn-Knopp otherwise
// Each branch replays the call sequence spelled out in the fixture description.
import { tf } from '../../backend/tf.js';
import type { FixtureContext } from '../runner.js';
import { f64, i64 } from '../tensor_io.js';
import { DINOLoss } from '../../ssl/dino_loss.js';
import { DINOClsTokenLoss } from '../../ssl/dino_clstoken_loss.js';
import { IBOTPatchLoss } from '../../ssl/ibot_patch_loss.js';
import { koleoLoss } from '../../ssl/koleo_loss.js';
import { defaultMasksWeight, type MaskBatch } from '../../ssl/collate.js';
import { configNumber, fromTensor, inputMask, inputTensor } from './ssl_io.js';

export function lossHandler(ctx: FixtureContext): void {
  if (ctx.has('inputs/x') && ctx.has('nn_indices')) return koleo(ctx);
  if (ctx.has('inputs/step0/student_output')) return dinoV1(ctx);
  if (ctx.has('inputs/teacher_raw')) return ibot(ctx);
  if (ctx.has('inputs/teacher_out')) return dinoV2Cls(ctx);
  throw new Error(`fixture ${ctx.name}: unrecognised loss fixture (expected inputs/x, inputs/step0/student_output, inputs/teacher_raw or inputs/teacher_out)`);
}

function emitIf(ctx: FixtureContext, name: string, make: () => Parameters<FixtureContext['emit']>[1]): void {
  if (ctx.has(name)) ctx.emit(name, make());
}

function koleo(ctx: FixtureContext): void {
  tf.tidy(() => {
    const { loss, nnIndices } = koleoLoss(inputTensor(ctx, 'inputs/x'));
    ctx.emit('loss', fromTensor(loss));
    ctx.emit('nn_indices', i64(nnIndices.shape, nnIndices.dataSync()));
  });
}

function dinoV1(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config;
  const epochs = ctx.fixture.epochs as number[] | undefined;
  if (!Array.isArray(epochs)) throw new Error(`fixture ${ctx.name}: needs an 'epochs' list (the epoch of each step)`);
  const loss = new DINOLoss({
    outDim: configNumber(ctx, cfg, 'out_dim'),
    ncrops: configNumber(ctx, cfg, 'ncrops'),
    warmupTeacherTemp: configNumber(ctx, cfg, 'warmup_teacher_temp'),
    teacherTemp: configNumber(ctx, cfg, 'teacher_temp'),
    warmupTeacherTempEpochs: configNumber(ctx, cfg, 'warmup_teacher_temp_epochs'),
    nepochs: configNumber(ctx, cfg, 'nepochs'),
    studentTemp: configNumber(ctx, cfg, 'student_temp'),
    centerMomentum: configNumber(ctx, cfg, 'center_momentum'),
  });
  try {
    if (ctx.has('inputs/center0')) loss.center.set(ctx.input('inputs/center0').data as Float32Array);
    emitIf(ctx, 'teacher_temp_schedule', () => f64([loss.teacherTempSchedule.length], loss.teacherTempSchedule));
    for (let i = 0; ctx.has(`inputs/step${i}/student_output`); i++) {
      const epoch = epochs[i];
      if (epoch === undefined) throw new Error(`fixture ${ctx.name}: no epoch for step ${i} in 'epochs'`);
      tf.tidy(() => {
        const l = loss.forward(inputTensor(ctx, `inputs/step${i}/student_output`), inputTensor(ctx, `inputs/step${i}/teacher_output`), epoch);
        ctx.emit(`step${i}/loss`, fromTensor(l));
        ctx.emit(`step${i}/teacher_temp`, f64([], [loss.teacherTemp(epoch)]));
        ctx.emit(`step${i}/center_after`, fromTensor(loss.center.value));
      });
    }
  } finally {
    loss.dispose();
  }
}

function dinoV2Cls(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config;
  const temp = configNumber(ctx, cfg, 'teacher_temp');
  const nLocal = configNumber(ctx, cfg, 'n_local_crops');
  const nGlobal = configNumber(ctx, cfg, 'n_global_crops');
  const loss = new DINOClsTokenLoss(configNumber(ctx, cfg, 'out_dim'), configNumber(ctx, cfg, 'student_temp'), configNumber(ctx, cfg, 'center_momentum'));
  try {
    tf.tidy(() => {
      const teacherOut = inputTensor(ctx, 'inputs/teacher_out');
      let probs;
      if (ctx.has('inputs/center0')) {
        loss.center.set(ctx.input('inputs/center0').data as Float32Array);
        loss.updateCenter(inputTensor(ctx, 'inputs/teacher_prev')); // pending, applied by the softmax below
        probs = loss.softmaxCenterTeacher(teacherOut, temp);
        emitIf(ctx, 'center_after_apply', () => fromTensor(loss.center.value));
      } else {
        probs = loss.sinkhornKnoppTeacher(teacherOut, temp);
      }
      ctx.emit('teacher_probs', fromTensor(probs));
      const perCrop = tf.split(probs, nGlobal, 0);
      const local = loss.forward(tf.split(inputTensor(ctx, 'inputs/student_local'), nLocal, 0), perCrop);
      const global = loss.forward([inputTensor(ctx, 'inputs/student_global')], [probs]);
      ctx.emit('loss_local', fromTensor(local));
      ctx.emit('loss_global', fromTensor(global));
      if (ctx.has('center_final')) {
        loss.updateCenter(teacherOut);
        loss.applyCenterUpdate();
        ctx.emit('center_final', fromTensor(loss.center.value));
      }
    });
  } finally {
    loss.dispose();
  }
}

function ibot(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config;
  const temp = configNumber(ctx, cfg, 'teacher_temp');
  const masksName = ctx.fixture.masks;
  if (typeof masksName !== 'string') throw new Error(`fixture ${ctx.name}: needs 'masks' (the name of the collated masks tensor)`);
  const m = inputMask(ctx, masksName);
  const masks: MaskBatch = { data: m.data, shape: [m.shape[0]!, m.shape[1]!] };
  const M = masks.data.reduce((a, b) => a + b, 0);
  if (cfg?.n_masked_patches !== undefined && cfg.n_masked_patches !== M) {
    throw new Error(`fixture ${ctx.name}: config.n_masked_patches ${cfg.n_masked_patches} but the masks have ${M} masked patches`);
  }
  const masksWeight = defaultMasksWeight(masks); // what collate_data_and_cast produces for these masks
  const loss = new IBOTPatchLoss(configNumber(ctx, cfg, 'patch_out_dim'), configNumber(ctx, cfg, 'student_temp'), configNumber(ctx, cfg, 'center_momentum'));
  try {
    tf.tidy(() => {
      const teacherRaw = inputTensor(ctx, 'inputs/teacher_raw'); // [1, U, K]
      const K = teacherRaw.shape[2]!;
      const studentMasked = inputTensor(ctx, 'inputs/student_masked');
      loss.center.set(ctx.input('inputs/center0').data as Float32Array);
      loss.updateCenter(inputTensor(ctx, 'inputs/teacher_prev'));
      const probs = loss.softmaxCenterTeacher(teacherRaw.slice([0, 0, 0], [1, M, K]), temp).squeeze([0]);
      ctx.emit('center_after_apply', fromTensor(loss.center.value));
      ctx.emit('teacher_probs', fromTensor(probs));
      ctx.emit('loss_masked', fromTensor(loss.forwardMasked(studentMasked, probs, masks, { nMaskedPatches: M, masksWeight })));
      ctx.emit('loss_masked_default_weights', fromTensor(loss.forwardMasked(studentMasked, probs, masks)));
      loss.updateCenter(teacherRaw);
      loss.applyCenterUpdate();
      ctx.emit('center_final', fromTensor(loss.center.value));

      const sk = loss.sinkhornKnoppTeacher(teacherRaw.slice([0, 0, 0], [1, M, K]).squeeze([0]), temp, M);
      ctx.emit('sk_probs', fromTensor(sk));
      ctx.emit('loss_masked_sinkhorn', fromTensor(loss.forwardMasked(studentMasked, sk, masks, { nMaskedPatches: M, masksWeight })));
      if (ctx.has('inputs/student_full')) {
        const full = loss.forward(inputTensor(ctx, 'inputs/student_full'), inputTensor(ctx, 'inputs/teacher_full'), masks);
        ctx.emit('loss_forward_full', fromTensor(full));
      }
    });
  } finally {
    loss.dispose();
  }
}
