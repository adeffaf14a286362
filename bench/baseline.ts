// Helpers the benchmarks share: launching a PyTorch baseline script and printing a kernel profile of one step.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tf } from '../src/backend/tf.js';

/** The python that has torch: $DINOTS_PYTHON, else Debian's /usr/bin/python3 (python3-torch), else python3 on PATH. */
export function torchPython(): string {
  return process.env.DINOTS_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/**
 * Runs `python <script> <args>` and parses the JSON object on its last stdout line; null (with a warning) when the
 * baseline cannot run. OpenMP threads wait passively (`env` entries override the inherited environment, `env` itself
 * may put process.env last so an explicit setting wins).
 */
export function runTorchBaseline<T = Record<string, any>>(script: string, args: (string | number)[], env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }): T | null {
  const python = torchPython();
  const r = spawnSync(python, [script, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 24, env });
  if (r.status !== 0) {
    process.stderr.write(`torch baseline unavailable (${python}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** Profiles one call of `step` and prints the `top` kernels by time (name column `nameWidth` wide). */
export async function printKernelProfile(step: () => void, label: string, top: number, nameWidth: number): Promise<void> {
  const p = await tf.profile(step);
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of p.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls++;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`  profile of ${label}: ${total.toFixed(0)} ms in ${p.kernels.length} kernels`);
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`    ${name.padEnd(nameWidth)} ${e.ms.toFixed(1).padStart(8)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${e.calls} calls`);
  }
}
