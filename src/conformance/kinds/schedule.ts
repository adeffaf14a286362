// Fixture kind `schedule` (float64 schedules).
//   DINOv2 style: config = { train, optim, teacher } -> buildSchedulers; outputs `<name>/schedule` and `<name>/getitem`
//     (getitem has as many values as its stored shape: sched.at(i) for i = 0..n-1). Names outside build_schedulers
//     (e.g. `cosine_with_freeze`) are built from the description's "`name` = CosineScheduler(args)".
//   DINO v1 style: config = { <name>: { base_value, final_value, epochs, niter_per_ep, ... } } -> cosineScheduler;
//     `teacher_temp` (per epoch) comes from the description's "warmup A->B over W of N epochs".
import type { FixtureContext } from '../runner.js';
import { f64 } from '../tensor_io.js';
import { buildSchedulers, CosineScheduler, cosineScheduler, teacherTempScheduleV1, type ScheduleConfig } from '../../ssl/schedules.js';

export function scheduleHandler(ctx: FixtureContext): void {
  const cfg = ctx.fixture.config ?? {};
  if (cfg.optim && cfg.train && cfg.teacher) return v2(ctx, cfg as ScheduleConfig);
  return v1(ctx, cfg);
}

/** Output names of this fixture (relative to it). */
function outputs(ctx: FixtureContext): string[] {
  return ctx.fixture.tensors
    .filter((t) => ctx.manifest.tensors[t]?.role === 'output')
    .map((t) => t.slice(ctx.name.length + 1));
}

function v1(ctx: FixtureContext, cfg: Record<string, any>): void {
  for (const name of outputs(ctx)) {
    const c = cfg[name];
    if (c && typeof c === 'object') {
      const s = cosineScheduler(c.base_value, c.final_value, c.epochs, c.niter_per_ep, c.warmup_epochs ?? 0, c.start_warmup_value ?? 0);
      ctx.emit(name, f64([s.length], s));
    } else if (name === 'teacher_temp') {
      const m = /warmup\s+([\d.eE+-]+)\s*->\s*([\d.eE+-]+)\s+over\s+(\d+)\s+of\s+(\d+)\s+epochs/.exec(ctx.fixture.description ?? '');
      if (!m) throw new Error(`fixture ${ctx.name}: teacher_temp needs "warmup A->B over W of N epochs" in the description`);
      const s = teacherTempScheduleV1(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
      ctx.emit(name, f64([s.length], s));
    } else {
      throw new Error(`fixture ${ctx.name}: no config for schedule '${name}'`);
    }
  }
}

/** "`name` = CosineScheduler(1e-3, 1e-6, total_iters=70, ...)" from the description. */
function schedulerFromDescription(ctx: FixtureContext, name: string): CosineScheduler {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp('`' + esc + '`\\s*=\\s*CosineScheduler\\(([^)]*)\\)').exec(ctx.fixture.description ?? '');
  if (!m) throw new Error(`fixture ${ctx.name}: schedule '${name}' is neither built by build_schedulers nor described as \`${name}\` = CosineScheduler(...)`);
  const order = ['base_value', 'final_value', 'total_iters', 'warmup_iters', 'start_warmup_value', 'freeze_iters'];
  const args: Record<string, number> = { warmup_iters: 0, start_warmup_value: 0, freeze_iters: 0 };
  m[1]!.split(',').forEach((part, i) => {
    const [k, v] = part.includes('=') ? part.split('=').map((s) => s.trim()) : [order[i]!, part.trim()];
    args[k!] = Number(v);
  });
  return new CosineScheduler(args.base_value!, args.final_value!, args.total_iters!, args.warmup_iters, args.start_warmup_value, args.freeze_iters);
}

function v2(ctx: FixtureContext, cfg: ScheduleConfig): void {
  const built = buildSchedulers(cfg);
  const byName: Record<string, CosineScheduler> = {
    lr: built.lr,
    wd: built.wd,
    momentum: built.momentum,
    teacher_temp: built.teacherTemp,
    last_layer_lr: built.lastLayerLr,
  };
  for (const out of outputs(ctx)) {
    const slash = out.lastIndexOf('/');
    const name = out.slice(0, slash);
    const what = out.slice(slash + 1);
    const sched = byName[name] ?? (byName[name] = schedulerFromDescription(ctx, name));
    if (what === 'schedule') {
      ctx.emit(out, f64([sched.schedule.length], sched.schedule));
    } else if (what === 'getitem') {
      const n = ctx.entry(out).shape[0]!;
      ctx.emit(out, f64([n], Array.from({ length: n }, (_, i) => sched.at(i))));
    } else {
      throw new Error(`fixture ${ctx.name}: unknown schedule output '${out}' (expected <name>/schedule or <name>/getitem)`);
    }
  }
}
