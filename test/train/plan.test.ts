// The one planner: the iteration counts of both recipes planned by epochs and by time, and the fraction-of-plan
// fields (lr warm-up, teacher-temperature warm-up, last-layer freeze) of time-planned runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../../src/train/config_layers.js';
import { buildSchedules, isReplanPoint, planRun, replanByTime } from '../../src/train/plan.js';
import { TINY } from './tiny.js';

test('dino: epochs are data epochs; by time, the lr warm-up is warmup_fraction of the planned steps', () => {
  const cfg = resolveConfig({ layers: [{ ...TINY, epochs: 3, warmup_epochs: 1, freeze_last_layer: 1 }] });
  const byEpochs = planRun(cfg, 6, null);
  assert.deepEqual([byEpochs.total_iterations, byEpochs.epoch_length, byEpochs.warmup_iterations, byEpochs.freeze_last_layer_iterations], [18, 6, 6, 6]);
  const byTime = planRun(resolveConfig({ layers: [{ ...TINY, minutes: 1, freeze_last_layer: 1 }] }), 6, 1); // 60 steps of 1 s
  assert.deepEqual([byTime.total_iterations, byTime.epochs, byTime.warmup_iterations, byTime.freeze_last_layer_iterations], [60, 10, 6, 6]);
  // The v1 teacher temperature holds through each data epoch.
  const warm = resolveConfig({ layers: [{ ...TINY, epochs: 3, warmup_teacher_temp: 0.02, teacher_temp: 0.06, warmup_teacher_temp_epochs: 2 }] });
  const s = buildSchedules(warm, planRun(warm, 6, null));
  assert.deepEqual([0, 5, 6, 11, 12].map((i) => s.teacherTemp.at(i)), [0.02, 0.02, 0.06, 0.06, 0.06]);
});

test('time-planned fractions: teacher-temperature warm-up and last-layer freeze as shares of the planned steps', () => {
  const cfg = resolveConfig({
    layers: [{ ...TINY, minutes: 1, warmup_teacher_temp: 0.02, teacher_temp: 0.06 }, { teacher: { warmup_teacher_temp_fraction: 0.25 }, optim: { freeze_last_layer_fraction: 0.05 } }],
  });
  const plan = planRun(cfg, 6, 1);
  assert.deepEqual([plan.teacher_temp_warmup_iterations, plan.freeze_last_layer_iterations], [15, 3]);
  const s = buildSchedules(cfg, plan);
  assert.equal(s.teacherTemp.at(0), 0.02);
  assert.ok(s.teacherTemp.at(7)! > 0.02 && s.teacherTemp.at(7)! < 0.06, 'linear over the first 15 iterations');
  assert.equal(s.teacherTemp.at(15), 0.06);
  assert.equal(s.freezeLastLayerIterations, 3);
  assert.deepEqual([s.lastLayerLr.at(2), s.lastLayerLr.at(3) > 0], [0, true]);
  // Planned by epochs, the fractions do not apply.
  const byEpochs = planRun(resolveConfig({ layers: [{ ...TINY, epochs: 2 }, { teacher: { warmup_teacher_temp_fraction: 0.25 } }] }), 6, null);
  assert.equal(byEpochs.teacher_temp_warmup_iterations, 0);
});

test('dinov2: an epoch is OFFICIAL_EPOCH_LENGTH iterations, or total / optim.epochs when planned by time', () => {
  const cfg = resolveConfig({ preset: 'mnist-tiny' }); // 20 epochs of 10, warm-up 2, freeze 1
  const byEpochs = planRun({ ...cfg, run: { ...cfg.run, minutes: null } }, 7, null);
  assert.deepEqual([byEpochs.total_iterations, byEpochs.epoch_length, byEpochs.warmup_iterations, byEpochs.freeze_last_layer_iterations], [200, 10, 20, 10]);
  const byTime = planRun(cfg, 7, 1); // 5 minutes of 1 s steps: 300 iterations, epochs of 15
  assert.deepEqual([byTime.total_iterations, byTime.epoch_length, byTime.warmup_iterations, byTime.teacher_temp_warmup_iterations], [300, 15, 30, 450]);
});

test('re-planning: the rest of the budget at the latest step time; schedules stretch with the plan', () => {
  const cfg = resolveConfig({ layers: [{ ...TINY, minutes: 10, warmup_fraction: 0.1 }, { teacher: { warmup_teacher_temp_fraction: 0.2 } }] });
  const plan = planRun(cfg, 6, 0.6); // 1000 steps of 0.6 s
  assert.equal(plan.total_iterations, 1000);
  // At step 100, 50 s used (the steps were faster than calibrated): 550 s left at 0.45 s a step = 1222 more.
  const next = replanByTime(cfg, plan, 100, 50, 0.45)!;
  assert.ok(Math.abs(next.total_iterations - 1322) <= 1, `${next.total_iterations}`);
  assert.equal(next.warmup_iterations, Math.round(0.1 * next.total_iterations));
  assert.equal(next.teacher_temp_warmup_iterations, Math.round(0.2 * next.total_iterations));
  assert.equal(next.measured_step_s, 0.45);
  assert.equal(buildSchedules(cfg, next).lr.at(next.total_iterations - 1) < 1e-4, true, 'the lr cosine ends with the new plan');
  // Slower steps shrink the plan; a change under 1% and an epoch-planned run are left alone.
  assert.ok(replanByTime(cfg, plan, 100, 50, 0.9)!.total_iterations < 1000);
  assert.equal(replanByTime(cfg, plan, 100, 60, 0.6), null);
  const byEpochs = resolveConfig({ layers: [{ ...TINY, epochs: 2 }] });
  assert.equal(replanByTime(byEpochs, planRun(byEpochs, 6, null), 3, 1, 0.1), null);
});

test('re-planning points: every 5% of the plan from 5% to 80%', () => {
  const points = Array.from({ length: 1001 }, (_, i) => i).filter((i) => isReplanPoint(i, 1000));
  assert.deepEqual(points, [50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800]);
});

test('--steps: exactly that many steps, the schedules as fractions as in a time-planned run; not with --minutes', () => {
  const cfg = resolveConfig({ layers: [{ ...TINY, minutes: null, steps: 200, warmup_fraction: 0.1 }, { teacher: { warmup_teacher_temp_fraction: 0.3 } }] });
  const plan = planRun(cfg, 6, null);
  assert.deepEqual([plan.total_iterations, plan.warmup_iterations, plan.teacher_temp_warmup_iterations, plan.planned_by], [200, 20, 60, 'steps']);
  assert.throws(() => resolveConfig({ layers: [{ ...TINY, minutes: 5, steps: 200 }] }), /run\.minutes \(--minutes\) and run\.steps \(--steps\) both plan the run/);
});
