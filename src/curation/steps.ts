// Resumable steps: each step writes its outputs plus `<step>.json` holding a fingerprint of its options and of the
// fingerprints of the steps it reads. A step is skipped when its outputs exist and the fingerprint is unchanged;
// changing an option (or re-running an upstream step with other inputs) re-runs it and everything downstream.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STEP_NAMES = ['embed', 'dedup', 'cluster', 'retrieve', 'report'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface StepRecord {
  step: StepName;
  fingerprint: string;
  finishedAt: string;
  seconds: number;
  outputs: string[];
  /** Step-specific summary (counts, thresholds) for stats.json. */
  summary: Record<string, unknown>;
}

export function parseSteps(list: string): StepName[] {
  const steps = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of steps) {
    if (!(STEP_NAMES as readonly string[]).includes(s)) throw new Error(`--steps: unknown step '${s}' (steps: ${STEP_NAMES.join(',')})`);
  }
  return STEP_NAMES.filter((s) => steps.includes(s));
}

export function fingerprint(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

export function recordPath(work: string, step: StepName): string {
  return join(work, `${step}.json`);
}

export function readRecord(work: string, step: StepName): StepRecord | null {
  const p = recordPath(work, step);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as StepRecord;
}

/** The record of an upstream step, or a clear error telling which step to run first. */
export function requireRecord(work: string, step: StepName, by: StepName): StepRecord {
  const r = readRecord(work, step);
  if (!r || !r.outputs.every((o) => existsSync(join(work, o)))) {
    throw new Error(`step '${by}' needs the outputs of step '${step}' in ${work}: run with --steps ${step},${by}`);
  }
  return r;
}

/** True when the step already ran with this fingerprint and its outputs are still there. */
export function isUpToDate(work: string, step: StepName, fp: string): boolean {
  const r = readRecord(work, step);
  return !!r && r.fingerprint === fp && r.outputs.every((o) => existsSync(join(work, o)));
}

export function writeRecord(work: string, rec: StepRecord): void {
  writeFileSync(recordPath(work, rec.step), JSON.stringify(rec, null, 2));
}
