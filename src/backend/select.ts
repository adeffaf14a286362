// Backend selection: `native` (our N-API addon) when it is built, else `wasm`, else the pure-JS `cpu`.
// Override with initBackend('cpu' | 'wasm' | 'native') or the DINOTS_BACKEND environment variable.
// Matmul precision: f32 by default; DINOTS_PRECISION=bf16 (or the CLI's --precision bf16) opts into bf16 matmul
// operands with f32 accumulation on the native backend: mixed precision, as torch.autocast(dtype=bfloat16) does for
// linear layers. Parameters, optimizer state, norms, softmax and losses stay float32.
import { loadAddon } from './native/addon.js';
import { registerNativeBackend } from './native/register.js';
import { tf } from './tf.js';

export type BackendName = 'native' | 'wasm' | 'cpu';
export type MatmulPrecision = 'f32' | 'bf16';
let announced = false;
let precision: MatmulPrecision = 'f32';

/** The matmul precision in effect. */
export function matmulPrecision(): MatmulPrecision {
  return precision;
}

/** The backend as run logs name it: "native", or "native (bf16 matmuls)" under bf16 precision. */
export function backendLabel(backend: BackendName): string {
  return precision === 'bf16' ? `${backend} (bf16 matmuls)` : backend;
}

/** Sets the matmul precision; bf16 needs the native backend and a CPU with bf16 support (AVX512-BF16 or AMX). */
export async function setMatmulPrecision(p: MatmulPrecision): Promise<void> {
  if (p !== 'f32' && p !== 'bf16') throw new Error(`unknown precision '${p}' (DINOTS_PRECISION): use f32 or bf16`);
  if (tf.getBackend() !== 'native') {
    if (p === 'bf16') throw new Error(`bf16 matmul needs the native backend (now: ${tf.getBackend()}); build it with: npm run build:native`);
    precision = p;
    return;
  }
  const addon = loadAddon();
  addon.setMatmulPrecision(p);
  if (p === 'bf16' && !/bf16|amx/.test(addon.cpuIsa())) {
    process.stderr.write(`dinots: this CPU (${addon.cpuIsa()}) has no bf16 instructions; bf16 matmul is emulated and slower than f32\n`);
  }
  precision = p;
}

/**
 * Threads of this JS thread's kernels from now on (native backend; the others run one thread here). Each
 * data-parallel replica takes its share of the cores this way.
 */
export function setBackendThreads(n: number): void {
  if (tf.getBackend() !== 'native') return;
  loadAddon().setNumThreads(n);
}

async function tryNative(): Promise<string | null> {
  try {
    return registerNativeBackend();
  } catch (e) {
    return `native backend unavailable: ${(e as Error).message}`;
  }
}

async function tryWasm(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    return null;
  } catch (e) {
    return `wasm backend unavailable: ${(e as Error).message}`;
  }
}

/** Picks and activates a backend; returns its name. Safe to call more than once. */
export async function initBackend(requested?: BackendName | 'auto'): Promise<BackendName> {
  const want = (requested ?? (process.env.DINOTS_BACKEND as BackendName | 'auto' | undefined) ?? 'auto') as
    | BackendName
    | 'auto';
  if (!['auto', 'native', 'wasm', 'cpu'].includes(want)) {
    throw new Error(`unknown backend '${want}' (DINOTS_BACKEND): use native, wasm, cpu or auto`);
  }
  const current = tf.getBackend() as BackendName | undefined;
  if (current && (want === current || (want === 'auto' && current === 'native'))) return withEnvPrecision(current);

  if (want === 'native' || want === 'auto') {
    const why = await tryNative();
    if (why === null && (await tf.setBackend('native'))) return withEnvPrecision('native');
    if (want === 'native') throw new Error(`${why}. Build it with: npm run build:native (needs apt-get install g++ libdnnl-dev)`);
    if (!announced) {
      announced = true;
      process.stderr.write(`dinots: ${why}; falling back to wasm (much slower). Build the native backend: npm run build:native\n`);
    }
  }
  if (want === 'wasm' || want === 'auto') {
    const why = await tryWasm();
    if (why === null && (await tf.setBackend('wasm'))) return withEnvPrecision('wasm');
    if (want === 'wasm') throw new Error(why ?? 'wasm backend failed to initialise');
  }
  await tf.setBackend('cpu');
  return withEnvPrecision('cpu');
}

async function withEnvPrecision(backend: BackendName): Promise<BackendName> {
  const p = process.env.DINOTS_PRECISION as MatmulPrecision | undefined;
  if (p && p !== precision) await setMatmulPrecision(p);
  return backend;
}
