// Runs our implementation over any fixture folder: each fixture's `kind` picks a handler (kinds/index.ts), the handler
// reads the inputs and emits our outputs under the manifest's tensor names, and every reference output/stat is compared
// within its stored tolerance. Nothing is keyed on our own file names.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareTensor, type CompareResult } from './compare.js';
import { readManifest, type FixtureEntry, type Manifest, type TensorEntry } from './manifest.js';
import { readTensor, toFloat64, writeTensor, type BinTensor } from './tensor_io.js';
import { handlers } from './kinds/index.js';

export interface FixtureContext {
  dir: string;
  name: string;
  fixture: FixtureEntry;
  manifest: Manifest;
  /** Full tensor name ('fix/inputs/x') or one relative to the fixture ('inputs/x'). */
  has(name: string): boolean;
  entry(name: string): TensorEntry;
  input(name: string): BinTensor;
  /** Absolute path of a checkpoint listed in the fixture's `checkpoints`, or null when it is external / absent. */
  checkpointPath(key: string): string | null;
  /** Records one of our outputs. `variant` separates runs of the same call (e.g. from the .pth and from the HF file). */
  emit(name: string, t: BinTensor, variant?: string): void;
}

export type KindHandler = (ctx: FixtureContext) => Promise<void> | void;

export interface TensorResult extends CompareResult {
  tensor: string;
  variant: string;
  tolerance: string;
}

export interface FixtureResult {
  fixture: string;
  kind: string;
  status: 'pass' | 'fail' | 'not-covered' | 'error';
  error?: string;
  tensors: TensorResult[];
}

export interface RunOptions {
  outDir?: string;
  only?: string[];
}

export async function runFixtures(dir: string, opts: RunOptions = {}): Promise<FixtureResult[]> {
  const manifest = readManifest(dir);
  const results: FixtureResult[] = [];
  const written: Record<string, Record<string, TensorEntry>> = {};
  for (const [name, fixture] of Object.entries(manifest.fixtures)) {
    if (opts.only && !opts.only.some((p) => name.startsWith(p))) continue;
    results.push(await runOne(dir, manifest, name, fixture, written, opts.outDir));
  }
  if (opts.outDir) {
    for (const [variant, tensors] of Object.entries(written)) {
      const vdir = variant === 'default' ? opts.outDir : join(opts.outDir, 'variants', variant);
      mkdirSync(vdir, { recursive: true });
      writeFileSync(join(vdir, 'manifest.json'), JSON.stringify({ format: manifest.format, format_version: manifest.format_version, tensors }, null, 1));
    }
  }
  return results;
}

function fullName(fixtureName: string, name: string): string {
  return name.startsWith(`${fixtureName}/`) ? name : `${fixtureName}/${name}`;
}

async function runOne(
  dir: string,
  manifest: Manifest,
  name: string,
  fixture: FixtureEntry,
  written: Record<string, Record<string, TensorEntry>>,
  outDir?: string,
): Promise<FixtureResult> {
  const handler = handlers[fixture.kind];
  if (!handler) return { fixture: name, kind: fixture.kind, status: 'not-covered', tensors: [] };
  const emitted = new Map<string, Map<string, BinTensor>>(); // variant -> name -> tensor
  const resolve = (n: string) => (manifest.tensors[n] ? n : fullName(name, n));
  const ctx: FixtureContext = {
    dir,
    name,
    fixture,
    manifest,
    has: (n) => manifest.tensors[resolve(n)] !== undefined,
    entry: (n) => {
      const e = manifest.tensors[resolve(n)];
      if (!e) throw new Error(`fixture ${name}: no tensor '${n}' in the manifest`);
      return e;
    },
    input: (n) => readTensor(dir, ctx.entry(n)),
    checkpointPath: (key) => {
      const c = fixture.checkpoints?.[key];
      return c && !c.external ? join(dir, c.file) : null;
    },
    emit: (n, t, variant = 'default') => {
      if (!emitted.has(variant)) emitted.set(variant, new Map());
      emitted.get(variant)!.set(resolve(n), t);
    },
  };
  try {
    await handler(ctx);
  } catch (e) {
    return { fixture: name, kind: fixture.kind, status: 'error', error: (e as Error).stack ?? String(e), tensors: [] };
  }
  const expected = fixture.tensors.filter((t) => {
    const role = manifest.tensors[t]?.role;
    return role === 'output' || role === 'stat';
  });
  const tensors: TensorResult[] = [];
  if (emitted.size === 0) emitted.set('default', new Map());
  const primary = emitted.has('default') ? 'default' : emitted.keys().next().value!;
  for (const [variant, outs] of emitted) {
    for (const t of expected) {
      const entry = manifest.tensors[t]!;
      const tol = entry.atol_file ? `atol_file ${entry.atol_file}, rtol ${entry.rtol ?? 0}` : `atol ${entry.atol ?? 0}, rtol ${entry.rtol ?? 0}`;
      const ours = outs.get(t);
      if (!ours) {
        tensors.push({ tensor: t, variant, ok: false, maxAbs: NaN, maxRel: NaN, worstIndex: -1, reason: 'missing (not produced)', tolerance: tol });
        continue;
      }
      const ref = readTensor(dir, entry);
      // atol_file: a float32 tensor of the reference's shape with one absolute tolerance per element.
      const atolFile = entry.atol_file ? toFloat64(readTensor(dir, { ...entry, file: entry.atol_file, dtype: 'float32' })) : undefined;
      tensors.push({ tensor: t, variant, tolerance: tol, ...compareTensor(ref, ours, entry, atolFile) });
      if (outDir) {
        // The top-level folder gets one complete set (the 'default' variant, else the fixture's first one) so that
        // compare.py can check it directly; every named variant is also written under variants/<name>/.
        const targets = variant === primary ? ['default', variant] : [variant];
        for (const v of new Set(targets)) {
          (written[v] ??= {})[t] = { file: `tensors/${t}.bin`, dtype: ours.dtype, shape: ours.shape, role: entry.role };
          writeTensor(v === 'default' ? outDir : join(outDir, 'variants', v), `tensors/${t}.bin`, ours);
        }
      }
    }
  }
  return { fixture: name, kind: fixture.kind, status: tensors.every((r) => r.ok) ? 'pass' : 'fail', tensors };
}

export function formatResults(results: FixtureResult[], verbose = false): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.status === 'not-covered') {
      lines.push(`NOT COVERED ${r.fixture} (kind '${r.kind}' has no handler yet)`);
      continue;
    }
    if (r.status === 'error') {
      lines.push(`ERROR ${r.fixture}: ${r.error}`);
      continue;
    }
    const failed = r.tensors.filter((t) => !t.ok);
    lines.push(`${r.status.toUpperCase()} ${r.fixture} (${r.tensors.length - failed.length}/${r.tensors.length} tensors)`);
    for (const t of verbose ? r.tensors : failed) {
      lines.push(
        `  ${t.ok ? 'ok  ' : 'FAIL'} ${t.tensor}${t.variant === 'default' ? '' : ` [${t.variant}]`} max_abs ${t.maxAbs.toExponential(3)} max_rel ${t.maxRel.toExponential(3)} (${t.tolerance})${t.reason ? ` ${t.reason}` : ''}`,
      );
    }
  }
  return lines.join('\n');
}
