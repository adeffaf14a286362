// Hyper-parameter schedules of DINO (v1, per iteration arrays) and DINOv2 (CosineScheduler objects), in float64 like numpy.
//
// v1  cosineScheduler(base, final, epochs, niterPerEp, warmupEpochs=0, startWarmupValue=0) -> Float64Array[epochs*niterPerEp]
//       (dino utils.cosine_scheduler: linear warmup from startWarmupValue, then cosine from base towards final, never
//       reaching final exactly). Index it with the global iteration `epoch * niterPerEp + it`.
//     teacherTempScheduleV1(warmup, temp, warmupEpochs, nepochs) -> Float64Array[nepochs], indexed by *epoch*.
// v2  new CosineScheduler(base, final, totalIters, warmupIters=0, startWarmupValue=0, freezeIters=0): `.schedule`
//       (Float64Array[totalIters]: zeros for freezeIters, warmup, cosine) and `.at(i)` (final value for i >= totalIters).
//     buildSchedulers(cfg) -> { lr, wd, momentum, teacherTemp, lastLayerLr } from an official-style config
//       ({ train: { OFFICIAL_EPOCH_LENGTH }, optim: {...}, teacher: {...} }, see dinov2 train.py build_schedulers).
//       teacherTemp is per *iteration* (linear warmup, then constant). lastLayerLr is lr with the first
//       freeze_last_layer_epochs epochs set to 0.

/** numpy.linspace(start, stop, num) in float64: start + i*step, with the last element exactly `stop`. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  if (!Number.isInteger(num) || num < 0) throw new Error(`linspace: num must be a non-negative integer, got ${num}`);
  const out = new Float64Array(num);
  if (num === 0) return out;
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

/** The cosine part shared by both versions: final + 0.5*(base-final)*(1+cos(pi*i/n)), i = 0..n-1. */
function cosineDecay(base: number, final: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * i) / n));
  return out;
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`schedules: ${name} must be a non-negative integer, got ${v}`);
}

/** dino utils.cosine_scheduler: one value per iteration over `epochs * niterPerEp` iterations. */
export function cosineScheduler(
  base: number,
  final: number,
  epochs: number,
  niterPerEp: number,
  warmupEpochs = 0,
  startWarmupValue = 0,
): Float64Array {
  checkCount('epochs', epochs);
  checkCount('niterPerEp', niterPerEp);
  checkCount('warmupEpochs', warmupEpochs);
  const total = epochs * niterPerEp;
  const warmupIters = warmupEpochs * niterPerEp;
  if (warmupIters > total) throw new Error(`cosineScheduler: warmupEpochs (${warmupEpochs}) exceeds epochs (${epochs})`);
  const out = new Float64Array(total);
  if (warmupEpochs > 0) out.set(linspace(startWarmupValue, base, warmupIters));
  out.set(cosineDecay(base, final, total - warmupIters), warmupIters);
  return out;
}

/** v1 DINOLoss.teacher_temp_schedule: linspace(warmup, temp, warmupEpochs) then `temp` up to nepochs; index by epoch. */
export function teacherTempScheduleV1(warmupTemp: number, temp: number, warmupEpochs: number, nepochs: number): Float64Array {
  checkCount('warmupEpochs', warmupEpochs);
  checkCount('nepochs', nepochs);
  if (warmupEpochs > nepochs) throw new Error(`teacherTempScheduleV1: warmupEpochs (${warmupEpochs}) exceeds nepochs (${nepochs})`);
  const out = new Float64Array(nepochs).fill(temp);
  out.set(linspace(warmupTemp, temp, warmupEpochs));
  return out;
}

/** dinov2 utils.CosineScheduler: [zeros(freeze), linspace(startWarmup, base, warmup), cosine(base -> final)]. */
export class CosineScheduler {
  readonly schedule: Float64Array;

  constructor(
    readonly baseValue: number,
    readonly finalValue: number,
    readonly totalIters: number,
    readonly warmupIters = 0,
    readonly startWarmupValue = 0,
    readonly freezeIters = 0,
  ) {
    checkCount('totalIters', totalIters);
    checkCount('warmupIters', warmupIters);
    checkCount('freezeIters', freezeIters);
    const cosineIters = totalIters - warmupIters - freezeIters;
    if (cosineIters < 0) {
      throw new Error(`CosineScheduler: freezeIters (${freezeIters}) + warmupIters (${warmupIters}) exceed totalIters (${totalIters})`);
    }
    this.schedule = new Float64Array(totalIters); // zeros for the frozen part
    this.schedule.set(linspace(startWarmupValue, baseValue, warmupIters), freezeIters);
    this.schedule.set(cosineDecay(baseValue, finalValue, cosineIters), freezeIters + warmupIters);
  }

  /** The value at iteration `it` (`__getitem__`): the final value once past the end. */
  at(it: number): number {
    if (it >= this.totalIters) return this.finalValue;
    if (!(it >= 0)) throw new Error(`CosineScheduler.at: iteration must be >= 0, got ${it}`);
    return this.schedule[Math.floor(it)]!;
  }
}

/** The config fields build_schedulers reads (a subset of ssl_default_config.yaml, same names). */
export interface ScheduleConfig {
  train: { OFFICIAL_EPOCH_LENGTH: number };
  optim: {
    epochs: number;
    warmup_epochs: number;
    lr: number;
    min_lr: number;
    weight_decay: number;
    weight_decay_end: number;
    freeze_last_layer_epochs: number;
  };
  teacher: {
    momentum_teacher: number;
    final_momentum_teacher: number;
    warmup_teacher_temp: number;
    teacher_temp: number;
    warmup_teacher_temp_epochs: number;
  };
}

export interface Schedulers {
  lr: CosineScheduler;
  wd: CosineScheduler;
  momentum: CosineScheduler;
  teacherTemp: CosineScheduler;
  lastLayerLr: CosineScheduler;
}

function need(cfg: Record<string, unknown> | undefined, section: string, key: string): number {
  const v = cfg?.[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new Error(`buildSchedulers: config ${section}.${key} must be a number (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** dinov2 train.py build_schedulers. `lr` must already be scaled (the official code sets optim.lr from base_lr first). */
export function buildSchedulers(cfg: ScheduleConfig): Schedulers {
  const o = cfg.optim as unknown as Record<string, unknown>;
  const t = cfg.teacher as unknown as Record<string, unknown>;
  const epochLen = need(cfg.train as unknown as Record<string, unknown>, 'train', 'OFFICIAL_EPOCH_LENGTH');
  const totalIters = need(o, 'optim', 'epochs') * epochLen;
  const lrArgs = [need(o, 'optim', 'lr'), need(o, 'optim', 'min_lr'), totalIters, need(o, 'optim', 'warmup_epochs') * epochLen, 0] as const;
  const tempIters = need(t, 'teacher', 'warmup_teacher_temp_epochs') * epochLen;
  const temp = need(t, 'teacher', 'teacher_temp');
  const lastLayerLr = new CosineScheduler(...lrArgs);
  lastLayerLr.schedule.fill(0, 0, Math.min(need(o, 'optim', 'freeze_last_layer_epochs') * epochLen, totalIters));
  return {
    lr: new CosineScheduler(...lrArgs),
    wd: new CosineScheduler(need(o, 'optim', 'weight_decay'), need(o, 'optim', 'weight_decay_end'), totalIters),
    momentum: new CosineScheduler(need(t, 'teacher', 'momentum_teacher'), need(t, 'teacher', 'final_momentum_teacher'), totalIters),
    // total == warmup: a pure linear warmup to `temp`, then `temp` forever through at().
    teacherTemp: new CosineScheduler(temp, temp, tempIters, tempIters, need(t, 'teacher', 'warmup_teacher_temp')),
    lastLayerLr,
  };
}
