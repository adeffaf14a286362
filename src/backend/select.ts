// Backend selection: `native` (our N-API addon) when it is built, else `wasm`, else the pure-JS `cpu`.
// Override with initBackend('cpu' | 'wasm' | 'native') or the DINOTS_BACKEND environment variable.
import { tf } from './tf.js';

export type BackendName = 'native' | 'wasm' | 'cpu';
let announced = false;

async function tryNative(): Promise<string | null> {
  try {
    const mod = await import('./native/register.js');
    return mod.registerNativeBackend();
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
  if (current && (want === current || (want === 'auto' && current === 'native'))) return current;

  if (want === 'native' || want === 'auto') {
    const why = await tryNative();
    if (why === null && (await tf.setBackend('native'))) return 'native';
    if (want === 'native') throw new Error(`${why}. Build it with: npm run build:native (needs apt-get install g++ libdnnl-dev)`);
    if (!announced) {
      announced = true;
      process.stderr.write(`dinots: ${why}; falling back to wasm (much slower). Build the native backend: npm run build:native\n`);
    }
  }
  if (want === 'wasm' || want === 'auto') {
    const why = await tryWasm();
    if (why === null && (await tf.setBackend('wasm'))) return 'wasm';
    if (want === 'wasm') throw new Error(why ?? 'wasm backend failed to initialise');
  }
  await tf.setBackend('cpu');
  return 'cpu';
}
