// The step loop of a run (run.ts) and its pieces: the run folder, progress bookkeeping, batches from any iteration on,
// Ctrl-C handling and the final export.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../checkpoint/atomic.js';
import { saveSafetensors } from '../checkpoint/index.js';
import { savePth } from '../checkpoint/pth_write.js';
import type { MultiCropBatch, MultiCropLoader } from '../data/loader.js';
import type { VisionTransformer } from '../models/vit.js';
import type { KnnMonitor } from './knn_monitor.js';
import type { RunSettings } from './config.js';
import { NonFiniteLossError } from './trainer.js';
import { CHECKPOINT_FILE, type TrainProgress } from './run_checkpoint.js';

export type Log = (line: string) => void;

/** How a run is driven. */
export interface RunOptions {
  out: string;
  resume?: boolean;
  /** The one setting a resumed run may change (run.backend); default: the saved one. */
  backend?: string;
  /** Stop (as on SIGINT: save, return 'interrupted') after this many iterations of this process. For tests. */
  stopAfter?: number;
  /** Skip the k-NN evaluations (tests). */
  skipKnn?: boolean;
  /** Write progress lines / bar (default true). */
  progress?: boolean;
  log?: Log;
  /** Handle SIGINT and SIGTERM: finish the step, save, return 'interrupted' (default true). */
  handleSigint?: boolean;
}

export const stderrLog: Log = (s) => process.stderr.write(`${s}\n`);

/** Starts a new run folder: refuses one that already holds a run, writes config.json. */
export function createRunFolder(out: string, config: object): void {
  if (existsSync(join(out, CHECKPOINT_FILE))) {
    throw new Error(`${out} already holds a run (${CHECKPOINT_FILE}); pass --resume to continue it or choose another --out`);
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 1)}\n`);
}

/** The config.json of a run folder being resumed. */
export function readRunFolderConfig(out: string): Record<string, unknown> {
  const p = join(out, 'config.json');
  if (!existsSync(p)) throw new Error(`--resume: ${out} has no config.json (is it a run folder?)`);
  return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
}

/** The progress of a run that has not started. */
export function freshProgress(plan: { total_iterations: number }, itersPerEpoch: number): TrainProgress {
  return { iteration: 0, epoch: 0, epoch_iteration: 0, train_seconds: 0, rng: {}, total_iterations: plan.total_iterations, iters_per_epoch: itersPerEpoch, plan };
}

/** Records that iteration `it` finished after `seconds`. */
export function advanceProgress(progress: TrainProgress, it: number, itersPerEpoch: number, seconds: number): void {
  progress.iteration = it + 1;
  progress.epoch = Math.floor((it + 1) / itersPerEpoch);
  progress.epoch_iteration = (it + 1) % itersPerEpoch;
  progress.train_seconds += seconds;
}

/** Probe steps timed before a time-planned run (the first is a warm-up and not counted). */
export const CALIBRATION_STEPS = 8;

/**
 * The step time a time-planned run plans with, from the probe steps' seconds: the median after the first (which
 * carries one-time costs: kernel setup, allocation), plus 5% for the loader and the machine's drift. The median of 7
 * keeps one slow or fast step (GC, a neighbour's burst on a shared VM) from mis-sizing the whole run.
 */
export function plannedStepSeconds(times: number[]): number {
  const rest = times.slice(1).sort((a, b) => a - b);
  return rest[Math.floor(rest.length / 2)]! * 1.05;
}

/** A message when a time-planned run has used its budget plus 10% (steps were slower than measured), else null. */
export function timeBudgetReached(minutes: number | null, plannedBy: string, progress: TrainProgress, total: number): string | null {
  if (minutes === null || plannedBy !== 'time' || progress.train_seconds < minutes * 60 * 1.1) return null;
  return `time budget reached at iteration ${progress.iteration} of ${total} planned (steps were slower than measured)`;
}

/** Batches from global iteration `start` on, across epochs (the loader prefetches in its workers). */
export async function* batchesFrom(loader: MultiCropLoader, start: number): AsyncGenerator<MultiCropBatch> {
  const perEpoch = loader.iterationsPerEpoch;
  for (let epoch = Math.floor(start / perEpoch); ; epoch++) {
    yield* loader.epoch(epoch, epoch === Math.floor(start / perEpoch) ? start % perEpoch : 0);
  }
}

/**
 * Keeps the lines of a JSON-lines file of the run folder that `keep` accepts (rewritten atomically): a resumed run
 * drops what steps after its checkpoint wrote (a kill -9, or a fallback to the previous checkpoint), so that every
 * iteration has one line.
 */
export function keepJsonLines(out: string, file: string, keep: (line: Record<string, unknown>) => boolean): void {
  const path = join(out, file);
  if (!existsSync(path)) return;
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const kept = lines.filter((l) => keep(JSON.parse(l) as Record<string, unknown>));
  if (kept.length === lines.length) return;
  const bytes = new TextEncoder().encode(kept.map((l) => `${l}\n`).join(''));
  writeFileAtomic(path, (sink) => sink.write(bytes));
}

/** Appends one JSON line to a file of the run folder. */
export function appendJsonLine(out: string, file: string, line: object): void {
  appendFileSync(join(out, file), `${JSON.stringify(line)}\n`);
}

/**
 * Ctrl-C (SIGINT) or SIGTERM (what schedulers and `kill` send) asks the loop to stop after the running step; it then
 * saves. A second signal exits without saving. With `enabled` false nothing is installed and `requested()` stays false.
 */
export function watchStopSignals(log: Log, enabled: boolean): { requested: () => boolean; release: () => void } {
  let stop = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const name = signal === 'SIGINT' ? 'Ctrl-C' : signal;
    if (stop) {
      log(`second ${name}: exiting without saving`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stop = true;
    log(`\n${name}: finishing this step, saving a checkpoint, then exiting (send it again to abort without saving)`);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  if (enabled) for (const s of signals) process.on(s, onSignal);
  return { requested: () => stop, release: () => void (enabled && signals.forEach((s) => process.off(s, onSignal))) };
}

/** A backbone under the official key names, as `<name>.pth` (torch.save(state_dict)) and `<name>.safetensors`. */
export function exportBackbone(out: string, name: string, backbone: VisionTransformer): void {
  const sd = backbone.stateDict();
  savePth(join(out, `${name}.pth`), sd);
  saveSafetensors(join(out, `${name}.safetensors`), sd, {}, { ...backbone.config, dropPathRate: 0 });
}

export type RunStatus = 'done' | 'interrupted' | 'nan';

/** What the shared step loop needs from a recipe. */
export interface StepLoop {
  progress: TrainProgress;
  /** The planned iterations; read before every step, since a time-planned run re-plans while it runs. */
  total: number;
  itersPerEpoch: number;
  settings: RunSettings;
  plannedBy: string;
  opts: RunOptions;
  log: Log;
  knn: KnnMonitor;
  /** One training iteration `it` (batch, step, metrics line, progress bar); resolves to its seconds. */
  step(it: number): Promise<number>;
  evaluateKnn(iteration: number): void;
  /** Writes checkpoint.safetensors with the current progress. */
  save(): void;
  /** After a finished run's final save: the exported backbone. */
  exportResult(): void;
  /** How to continue an interrupted run, e.g. `dinots train --resume --out runs/a`. */
  resumeHint: string;
  /** Stops the progress bar and the loader (also when a step throws). */
  close(): Promise<void>;
  /** After each step: may change `total` (and the schedules) to fit the time budget. */
  replan?(): void;
}

/**
 * Runs steps until the plan is done, Ctrl-C, `opts.stopAfter` steps, the time budget, or a non-finite loss;
 * evaluates k-NN at its points and checkpoints at epoch ends and every `checkpoint_minutes`. At the end: save, and
 * for a finished run the final k-NN, another save and the export.
 */
export async function runSteps(l: StepLoop): Promise<{ status: RunStatus; message?: string }> {
  const { progress, opts, log, knn } = l;
  const signals = watchStopSignals(log, opts.handleSigint ?? true);
  let status: RunStatus = 'done';
  let message: string | undefined;
  let lastSave = Date.now();
  let steps = 0;
  try {
    while (progress.iteration < l.total) {
      if (signals.requested() || (opts.stopAfter !== undefined && steps >= opts.stopAfter)) {
        status = 'interrupted';
        break;
      }
      const budget = timeBudgetReached(l.settings.minutes, l.plannedBy, progress, l.total);
      if (budget) {
        message = budget;
        log(message);
        break;
      }
      const it = progress.iteration;
      const seconds = await l.step(it);
      steps++;
      advanceProgress(progress, it, l.itersPerEpoch, seconds);
      l.replan?.();
      if (knn.due(progress.iteration)) l.evaluateKnn(progress.iteration);
      if (progress.epoch_iteration === 0 || Date.now() - lastSave > l.settings.checkpoint_minutes * 60_000) {
        l.save();
        lastSave = Date.now();
      }
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    status = 'nan';
    message = e.message;
  } finally {
    signals.release();
    await l.close();
  }
  if (status === 'nan') {
    log(`\n${message}`);
  } else {
    l.save();
    if (status === 'done') {
      l.evaluateKnn(progress.iteration);
      l.save();
      l.exportResult();
    } else {
      log(`\nsaved ${join(opts.out, CHECKPOINT_FILE)} at iteration ${progress.iteration}; continue with: ${l.resumeHint}`);
    }
  }
  return { status, message };
}
