import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchedulers, CosineScheduler, cosineScheduler, linspace, teacherTempScheduleV1 } from '../../src/ssl/schedules.js';

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}] ${actual[i]} != ${expected[i]}`);
}

test('linspace matches numpy (endpoint exact)', () => {
  close(linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
  assert.equal(linspace(0.04, 0.07, 21)[20], 0.07);
  assert.equal(linspace(3, 9, 0).length, 0);
});

test('v1 cosineScheduler: warmup then cosine that never reaches the final value', () => {
  // warmup linspace(0, 1, 2) = [0, 1]; cosine over n=2: 0 + 0.5*(1+cos(0)) = 1, 0.5*(1+cos(pi/2)) = 0.5
  close(cosineScheduler(1, 0, 2, 2, 1, 0), [0, 1, 1, 0.5]);
  // no warmup, 4 iters: 1 + 0.5*(2-1)*(1+cos(pi*i/4)) ... with base 2, final 1
  close(cosineScheduler(2, 1, 1, 4), [2, 1 + 0.5 * (1 + Math.SQRT1_2), 1.5, 1 + 0.5 * (1 - Math.SQRT1_2)]);
  assert.throws(() => cosineScheduler(1, 0, 2, 2, 3), /warmupEpochs/);
});

test('v1 teacher temperature schedule is per epoch', () => {
  close(teacherTempScheduleV1(0.04, 0.07, 3, 5), [0.04, 0.055, 0.07, 0.07, 0.07]);
  close(teacherTempScheduleV1(0.04, 0.04, 0, 2), [0.04, 0.04]);
});

test('v2 CosineScheduler: freeze zeros, warmup, cosine, final value past the end', () => {
  const s = new CosineScheduler(1, 0, 6, 2, 0, 1);
  close(s.schedule, [0, 0, 1, 1, 0.75, 0.25]);
  close([s.at(5)], [0.25]);
  assert.equal(s.at(6), 0);
  assert.equal(s.at(1000), 0);
});

test('v2 buildSchedulers from an official-style config', () => {
  const s = buildSchedulers({
    train: { OFFICIAL_EPOCH_LENGTH: 2 },
    optim: { epochs: 3, warmup_epochs: 1, lr: 1, min_lr: 0, weight_decay: 0.04, weight_decay_end: 0.4, freeze_last_layer_epochs: 1 },
    teacher: { momentum_teacher: 0.992, final_momentum_teacher: 1, warmup_teacher_temp: 0.04, teacher_temp: 0.07, warmup_teacher_temp_epochs: 1 },
  });
  // lr: linspace(0,1,2) then cosine over 4: 1, 0.5*(1+cos(pi/4)), 0.5, 0.5*(1-cos(pi/4))
  close(s.lr.schedule, [0, 1, 1, 0.5 * (1 + Math.SQRT1_2), 0.5, 0.5 * (1 - Math.SQRT1_2)]);
  close(s.lastLayerLr.schedule, [0, 0, 1, 0.5 * (1 + Math.SQRT1_2), 0.5, 0.5 * (1 - Math.SQRT1_2)]);
  close([s.wd.at(0)], [0.04]);
  assert.equal(s.momentum.at(6), 1);
  close(s.teacherTemp.schedule, [0.04, 0.07]);
  assert.equal(s.teacherTemp.at(100), 0.07);
  assert.throws(() => buildSchedulers({ train: {}, optim: {}, teacher: {} } as never), /OFFICIAL_EPOCH_LENGTH/);
});
