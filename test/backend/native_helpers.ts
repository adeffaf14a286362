// Shared helpers for the native backend tests: deterministic inputs, a cpu-vs-native comparison and the ViT nano's
// loss and gradients.
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { registerNativeBackend } from '../../src/backend/native/register.js';
import { fallbackStats } from '../../src/backend/native/kernel_util.js';
import { namedConfig } from '../../src/models/config.js';
import { VisionTransformer } from '../../src/models/vit.js';

/**
 * Loss and every parameter gradient of a seeded ViT nano on `backend` for fixed inputs: the loss is a random projection
 * of the features (mean(out²) would be ~constant after the final LayerNorm, a degenerate gradient).
 */
export async function vitNanoLossAndGrads(backend: string): Promise<{ loss: number; grads: Float32Array[] }> {
  await tf.setBackend(backend);
  const model = new VisionTransformer(namedConfig('vit_nano_p4_28'), { seed: 3 });
  model.train();
  const params = [...model.trainableParameters().values()];
  const x = tf.tensor(rand([2, 3, 28, 28], 7), [2, 3, 28, 28]);
  const r = tf.tensor(rand([2, 96], 8), [2, 96]);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.forward(x), r)) as tf.Scalar, params);
  const out = { loss: value.dataSync()[0]!, grads: params.map((p) => (grads[p.name]!.dataSync() as Float32Array).slice()) };
  tf.dispose([x, r, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

/**
 * false when the native backend is usable, else why the tests skip. In CI (CI=true) a missing backend is an error:
 * the install line brings g++ and libdnnl-dev, so the addon must have been built.
 */
export const nativeSkip: string | false = (() => {
  const why = registerNativeBackend() ?? false;
  if (why && process.env.CI) throw new Error(`the native backend is not usable in CI: ${why} (npm ci builds it when g++ and libdnnl-dev are installed)`);
  return why;
})();

/** Deterministic values in [lo, hi) from a small LCG (same inputs on both backends). */
export function rand(shape: number[], seed: number, lo = -2, hi = 2): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 16777216) * (hi - lo);
  }
  return out;
}

export interface CompareOptions {
  grad?: boolean;
  /** [lo, hi) of the random inputs (e.g. positive for log/sqrt). */
  range?: [number, number];
  rtol?: number;
  atol?: number;
  /** Expect the native kernels to handle everything (no cpu fallback). Default true. */
  noFallback?: boolean;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= worst)) { worst = Number.isNaN(excess) ? Infinity : excess; at = i; }
  }
  assert.ok(at < 0, `${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (rtol ${rtol}, atol ${atol})`);
}

async function runOn(backend: string, fn: (...xs: Tensor[]) => Tensor, shapes: number[][], inputs: Float32Array[],
  grad: boolean): Promise<{ y: Float32Array; shape: number[]; grads: Float32Array[] }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((v, i) => tf.tensor(v, shapes[i]!, 'float32'));
    const y = fn(...xs);
    const grads: Float32Array[] = [];
    if (grad) {
      const dy = tf.tensor(rand(y.shape, 99), y.shape, 'float32');
      for (const g of tf.grads((...a: Tensor[]) => fn(...a))(xs, dy)) grads.push(g.dataSync() as Float32Array);
    }
    return { y: y.dataSync() as Float32Array, shape: y.shape, grads };
  });
}

/** Runs fn (and its gradients) on `cpu` and `native` with the same inputs and checks they agree. */
export async function compareBackends(what: string, fn: (...xs: Tensor[]) => Tensor, shapes: number[][],
  opts: CompareOptions = {}): Promise<void> {
  const [lo, hi] = opts.range ?? [-2, 2];
  const inputs = shapes.map((s, i) => rand(s, i + 1, lo, hi));
  const rtol = opts.rtol ?? 1e-4, atol = opts.atol ?? 1e-5;
  const ref = await runOn('cpu', fn, shapes, inputs, opts.grad ?? false);
  const before = fallbackStats.count;
  const got = await runOn('native', fn, shapes, inputs, opts.grad ?? false);
  if (opts.noFallback ?? true) assert.equal(fallbackStats.count, before, `${what}: the native ${fallbackStats.last} kernel fell back to cpu`);
  assert.deepEqual(got.shape, ref.shape, `${what}: output shape`);
  close(got.y, ref.y, rtol, atol, `${what} forward`);
  ref.grads.forEach((g, i) => close(got.grads[i]!, g, rtol * 10, atol * 10, `${what} grad of input ${i}`));
}
