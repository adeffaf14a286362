// The schedule plan of a run: how many iterations, how long the warm-up is, and the per-iteration lr / wd / momentum
// arrays with the official formulas (dino utils.cosine_scheduler: linear warm-up from 0, then cosine towards the final
// value). Planning by epochs is exactly the official schedule; planning by time turns a wall-clock budget into an
// iteration count from a measured step time.
import { cosineScheduler, linspace } from '../ssl/schedules.js';
import type { TrainConfig } from './config.js';
import type { DinoSchedules } from './dino_trainer.js';

export interface SchedulePlan {
  total_iterations: number;
  iters_per_epoch: number;
  warmup_iterations: number;
  /** Epochs the run touches (ceil), for the teacher-temperature schedule. */
  epochs: number;
  /** Peak lr = lr · batch / 256 (the official linear scaling rule). */
  peak_lr: number;
  /** How the plan was made. */
  planned_by: 'epochs' | 'time';
  measured_step_s?: number;
}

/** linspace(0, base, warmup) followed by the cosine from base to final over the rest (official cosine_scheduler). */
export function warmupCosine(base: number, final: number, total: number, warmup: number): Float64Array {
  if (warmup > total) throw new Error(`warm-up (${warmup} iterations) is longer than the run (${total})`);
  const out = new Float64Array(total);
  out.set(linspace(0, base, warmup));
  out.set(cosineScheduler(base, final, 1, total - warmup), warmup);
  return out;
}

export function planByEpochs(cfg: TrainConfig, itersPerEpoch: number): SchedulePlan {
  return {
    total_iterations: cfg.epochs * itersPerEpoch,
    iters_per_epoch: itersPerEpoch,
    warmup_iterations: Math.min(cfg.warmup_epochs, cfg.epochs) * itersPerEpoch,
    epochs: cfg.epochs,
    peak_lr: (cfg.lr * cfg.batch_size_per_gpu) / 256,
    planned_by: 'epochs',
  };
}

/** Iterations that fit `minutes` at `stepSeconds` per iteration (at least 1). */
export function planByTime(cfg: TrainConfig, itersPerEpoch: number, stepSeconds: number): SchedulePlan {
  const total = Math.max(1, Math.floor((cfg.minutes! * 60) / stepSeconds));
  return {
    total_iterations: total,
    iters_per_epoch: itersPerEpoch,
    warmup_iterations: Math.round(cfg.warmup_fraction * total),
    epochs: Math.ceil(total / itersPerEpoch),
    peak_lr: (cfg.lr * cfg.batch_size_per_gpu) / 256,
    planned_by: 'time',
    measured_step_s: stepSeconds,
  };
}

export function buildSchedules(cfg: TrainConfig, plan: SchedulePlan): DinoSchedules {
  const n = plan.total_iterations;
  return {
    lr: warmupCosine(plan.peak_lr, cfg.min_lr, n, plan.warmup_iterations),
    wd: cosineScheduler(cfg.weight_decay, cfg.weight_decay_end, 1, n),
    momentum: cosineScheduler(cfg.momentum_teacher, 1, 1, n),
  };
}
