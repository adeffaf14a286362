// Fused AdamW step for lists of parameters (PyTorch semantics, decoupled weight decay):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)
// On the `native` backend it runs in place on the variables' buffers (one pass, no temporaries); elsewhere it is the
// same formula in TF.js ops.
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { tf, type Tensor, type Variable } from './tf.js';
import { nativeAddon } from './native/register.js';
import { cacheable } from './native/buffer_pool.js';
import { backendCopy } from './storage.js';

export interface AdamWStepOptions {
  /** Multiplies every gradient first (e.g. the gradient-clipping factor); 1 by default. */
  gradScale?: number;
}

function check(params: Variable[], grads: Tensor[], m: Variable[], v: Variable[]): void {
  if (grads.length !== params.length || m.length !== params.length || v.length !== params.length) {
    throw new Error(`adamwStep: params (${params.length}), grads (${grads.length}), m (${m.length}) and v (${v.length}) differ in length`);
  }
  params.forEach((p, i) => {
    for (const [name, t] of [['grad', grads[i]!], ['m', m[i]!], ['v', v[i]!]] as const) {
      if (t.size !== p.size) throw new Error(`adamwStep: ${name} ${i} has shape [${t.shape}], parameter has [${p.shape}]`);
    }
  });
}

/**
 * The variable's own float32 buffer, copied first when it is shared (clones, views) so in-place writes stay private.
 * A pool buffer that never escaped counts as its own even when it is a view of a larger pooled buffer; the copy goes
 * into such a buffer too (backendCopy), so that the matmul may keep cached forms of the parameter between updates.
 */
function ownBuffer(backend: MathBackendCPU, t: Variable): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const vals = backend.data.get(t.dataId).values;
  const whole = vals instanceof Float32Array && vals.byteOffset === 0 && vals.byteLength === vals.buffer.byteLength;
  if (vals instanceof Float32Array && (whole || cacheable(vals)) && backend.refCount(t.dataId) === 1) return vals;
  const copy = backendCopy(t);
  t.assign(copy);
  copy.dispose();
  return backend.data.get(t.dataId).values as Float32Array;
}

function compositeStep(p: Variable, g: Tensor, m: Variable, v: Variable, lr: number, wd: number, beta1: number,
  beta2: number, eps: number, step: number, gradScale: number): void {
  const bc1 = 1 - beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  tf.tidy(() => {
    const grad = gradScale === 1 ? g : tf.mul(g, gradScale);
    const decayed = wd !== 0 ? tf.mul(p, 1 - lr * wd) : p;
    const mNew = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
    const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2));
    const denom = tf.add(tf.div(tf.sqrt(vNew), bc2Sqrt), eps);
    m.assign(mNew);
    v.assign(vNew);
    p.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), lr / bc1)));
  });
}

/** One AdamW step over all parameters; `step` is the 1-based step count after incrementing. */
export function adamwStep(params: Variable[], grads: Tensor[], m: Variable[], v: Variable[], lr: number, wd: number,
  beta1: number, beta2: number, eps: number, step: number, opts: AdamWStepOptions = {}): void {
  check(params, grads, m, v);
  if (!(step >= 1)) throw new Error(`adamwStep: step must count from 1 (got ${step})`);
  const gradScale = opts.gradScale ?? 1;
  const addon = tf.getBackend() === 'native' ? nativeAddon() : null;
  const backend = tf.backend() as MathBackendCPU;
  params.forEach((p, i) => {
    const g = grads[i]!;
    const gv = addon && g.dtype === 'float32' ? backend.data.get(g.dataId).values : null;
    const pv = addon && gv instanceof Float32Array ? ownBuffer(backend, p) : null;
    const mv = pv ? ownBuffer(backend, m[i]!) : null;
    const vv = mv ? ownBuffer(backend, v[i]!) : null;
    if (addon && vv) addon.adamw(pv!, gv as Float32Array, mv!, vv, lr, wd, beta1, beta2, eps, step, gradScale);
    else compositeStep(p, g, m[i]!, v[i]!, lr, wd, beta1, beta2, eps, step, gradScale);
  });
}
