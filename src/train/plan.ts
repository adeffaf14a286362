// The plan of a run (how many iterations, how long an epoch of the schedules is, where the warm-ups and the last-layer
// freeze end) and its per-iteration schedules, for every recipe. Planning by epochs reproduces the official schedules
// (v1 utils.cosine_scheduler per data epoch; v2 build_schedulers per OFFICIAL_EPOCH_LENGTH); planning by time turns a
// wall-clock budget into an iteration count from a measured step time. All schedules are dinov2's CosineScheduler
// (linear warm-up from 0, then cosine towards the final value), which equals v1's cosine_scheduler arrays.
import { CosineScheduler, teacherTempScheduleV1 } from '../ssl/schedules.js';
import type { SSLConfig } from './config.js';

export interface Plan {
  total_iterations: number;
  /** Iterations of one epoch of the schedules (a data epoch, or the official-style epoch). */
  epoch_length: number;
  /** Epochs of the schedules (the teacher temperature per epoch). */
  epochs: number;
  iters_per_data_epoch: number;
  warmup_iterations: number;
  teacher_temp_warmup_iterations: number;
  freeze_last_layer_iterations: number;
  /** epochs: the official schedules; time: a budget in minutes; steps: a fixed count with the time plan's fractions. */
  planned_by: 'epochs' | 'time' | 'steps';
  measured_step_s?: number;
}

/** A value per iteration (CosineScheduler.at: the final value past the end). */
export interface Schedule {
  at(iteration: number): number;
}

export interface StepSchedules {
  lr: Schedule;
  wd: Schedule;
  momentum: Schedule;
  teacherTemp: Schedule;
  /** The last layer's lr (0 while frozen), for recipes that freeze it by schedule. */
  lastLayerLr: Schedule;
  /** Iterations [0, n) during which the last layer is frozen. */
  freezeLastLayerIterations: number;
}

/** The plan; `stepSeconds` (the measured step time) for a time-planned run, null to plan by epochs. */
export function planRun(cfg: SSLConfig, itersPerDataEpoch: number, stepSeconds: number | null): Plan {
  const { optim: o, teacher: t } = cfg;
  const bySteps = stepSeconds === null && cfg.run.steps !== null;
  // A fixed step count is planned like a time budget that holds exactly that many steps.
  const byTime = stepSeconds !== null || bySteps;
  let total: number;
  let epochLength: number;
  let epochs: number;
  const fit = bySteps ? cfg.run.steps! : byTime ? Math.max(1, Math.floor((cfg.run.minutes! * 60) / stepSeconds!)) : 0;
  if (cfg.train.schedule_epoch === 'data') {
    epochLength = itersPerDataEpoch;
    total = byTime ? fit : o.epochs * epochLength;
    epochs = byTime ? Math.ceil(total / epochLength) : o.epochs;
  } else {
    // Keeps the official proportions of a run of optim.epochs epochs: by time, an epoch is total / epochs iterations.
    epochLength = byTime ? Math.max(1, Math.round(fit / o.epochs)) : cfg.train.OFFICIAL_EPOCH_LENGTH;
    epochs = o.epochs;
    total = epochLength * epochs;
  }
  const fraction = (f: number | null) => (byTime && f !== null ? Math.round(f * total) : null);
  return {
    total_iterations: total,
    epoch_length: epochLength,
    epochs,
    iters_per_data_epoch: itersPerDataEpoch,
    warmup_iterations: fraction(o.warmup_fraction) ?? Math.min(o.warmup_epochs, epochs) * epochLength,
    teacher_temp_warmup_iterations: fraction(t.warmup_teacher_temp_fraction) ?? t.warmup_teacher_temp_epochs * epochLength,
    freeze_last_layer_iterations: fraction(o.freeze_last_layer_fraction) ?? Math.min(o.freeze_last_layer_epochs * epochLength, total),
    planned_by: bySteps ? 'steps' : byTime ? 'time' : 'epochs',
    ...(stepSeconds !== null ? { measured_step_s: stepSeconds } : {}),
  };
}

/** v1's teacher temperature: one value per epoch (linear over the warm-up epochs), held through the epoch. */
function perEpochTeacherTemp(cfg: SSLConfig, plan: Plan): Schedule {
  const t = cfg.teacher;
  const perEpoch = teacherTempScheduleV1(t.warmup_teacher_temp, t.teacher_temp, Math.min(t.warmup_teacher_temp_epochs, plan.epochs), plan.epochs);
  return {
    at: (it) => {
      const v = perEpoch[Math.floor(it / plan.epoch_length)];
      if (v === undefined) throw new Error(`iteration ${it} is past the end of the teacher temperature schedule (${plan.epochs} epochs)`);
      return v;
    },
  };
}

export function buildSchedules(cfg: SSLConfig, plan: Plan): StepSchedules {
  const { optim: o, teacher: t } = cfg;
  const n = plan.total_iterations;
  const lrArgs = [o.lr, o.min_lr, n, plan.warmup_iterations] as const;
  const lastLayerLr = new CosineScheduler(...lrArgs);
  lastLayerLr.schedule.fill(0, 0, plan.freeze_last_layer_iterations);
  const tempIters = plan.teacher_temp_warmup_iterations;
  const fractionalTemp = plan.planned_by !== 'epochs' && t.warmup_teacher_temp_fraction !== null;
  return {
    lr: new CosineScheduler(...lrArgs),
    wd: new CosineScheduler(o.weight_decay, o.weight_decay_end, n),
    momentum: new CosineScheduler(t.momentum_teacher, t.final_momentum_teacher, n),
    // total == warmup: a pure linear warm-up to `temp`, then `temp` through at().
    teacherTemp: t.temp_schedule_by === 'epoch' && !fractionalTemp
      ? perEpochTeacherTemp(cfg, plan)
      : new CosineScheduler(t.teacher_temp, t.teacher_temp, tempIters, tempIters, t.warmup_teacher_temp),
    lastLayerLr,
    freezeLastLayerIterations: plan.freeze_last_layer_iterations,
  };
}

/** lr 0, weight decay 0, momentum 1: steps that leave the parameters as they are (the time calibration's probes). */
export function frozenSchedules(teacherTemp: number): StepSchedules {
  const c = (v: number): Schedule => ({ at: () => v });
  return { lr: c(0), wd: c(0), momentum: c(1), teacherTemp: c(teacherTemp), lastLayerLr: c(0), freezeLastLayerIterations: 0 };
}

/** Re-planning points of a time-planned run: every 5% of the plan from 5% to 80% (later changes would jolt the schedules' tails). */
export function isReplanPoint(iteration: number, total: number): boolean {
  const every = Math.max(1, Math.round(total / 20));
  return iteration % every === 0 && iteration >= every && iteration <= 0.8 * total;
}

/**
 * A time-planned run's plan for the rest of its budget: the steps still to come at `recentStepSeconds` each (the
 * median of the latest steps, not the calibration's), so the run ends when the budget does even when the machine's
 * speed changes. Every schedule is a fraction of the plan, so it stretches or shrinks with it. null when the change is
 * under 1% (not worth moving the schedules) or the run is planned by epochs.
 */
export function replanByTime(cfg: SSLConfig, plan: Plan, iteration: number, trainSeconds: number, recentStepSeconds: number): Plan | null {
  if (plan.planned_by !== 'time' || cfg.run.minutes === null || !(recentStepSeconds > 0)) return null;
  const left = cfg.run.minutes * 60 - trainSeconds;
  const total = Math.max(iteration + 1, iteration + Math.floor(left / recentStepSeconds));
  if (Math.abs(total - plan.total_iterations) < 0.01 * plan.total_iterations) return null;
  // The step time that makes the whole budget hold `total` steps: planRun then sizes every schedule for it.
  const next = planRun(cfg, plan.iters_per_data_epoch, (cfg.run.minutes * 60) / (total + 0.5));
  return { ...next, measured_step_s: recentStepSeconds };
}
