// Small conversions shared by the SSL fixture handlers (loss, schedule, collate, statistics): fixture tensors <-> TF.js.
import { tf, type Tensor } from '../../backend/tf.js';
import type { FixtureContext } from '../runner.js';
import { f32, toFloat64, type BinTensor } from '../tensor_io.js';

/** A fixture input as a float32 TF.js tensor. */
export function inputTensor(ctx: FixtureContext, name: string): Tensor {
  const t = ctx.input(name);
  return tf.tensor(Float32Array.from(toFloat64(t)), t.shape, 'float32');
}

/** A fixture 0/1 mask input (int64 with logical_dtype bool) as bytes. */
export function inputMask(ctx: FixtureContext, name: string): { data: Uint8Array; shape: number[] } {
  const t = ctx.input(name);
  return { data: Uint8Array.from(toFloat64(t), (v) => (v !== 0 ? 1 : 0)), shape: t.shape };
}

/** Our TF.js tensor as a float32 fixture tensor of the given shape (defaults to the tensor's own). */
export function fromTensor(t: Tensor, shape: number[] = t.shape): BinTensor {
  return f32(shape, t.dataSync() as Float32Array);
}

/** A required numeric config field, with an error naming the fixture. */
export function configNumber(ctx: FixtureContext, cfg: Record<string, unknown> | undefined, key: string): number {
  const v = cfg?.[key];
  if (typeof v !== 'number') throw new Error(`fixture ${ctx.name}: config.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}
