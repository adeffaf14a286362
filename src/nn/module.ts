// A minimal torch.nn.Module analogue: a tree of named children and parameters.
// Parameters are tf.Variables kept in PyTorch layout (Linear weight [out, in], Conv2d [out, in, kh, kw])
// under the official state-dict names, so checkpoint I/O, EMA and optimizers work on plain name maps.
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import type { HostTensor, StateDict } from '../checkpoint/types.js';
import { backendCopy, hostCopy } from '../backend/storage.js';

export abstract class Module {
  private readonly childModules = new Map<string, Module>();
  private readonly ownParams = new Map<string, Variable>();
  /** Names of own parameters that are persistent but never trained (e.g. DINO v1 frozen weight_g). */
  private readonly frozen = new Set<string>();
  /** Persistent non-parameter state (BatchNorm running stats), saved in the state dict after the parameters. */
  private readonly ownBuffers = new Map<string, Variable>();
  training = false;

  protected addModule<M extends Module>(name: string, m: M): M {
    this.childModules.set(name, m);
    return m;
  }

  protected addParam(name: string, init: Tensor, trainable = true): Variable {
    const v = ownedVariable(init, trainable);
    if (!trainable) this.frozen.add(name);
    this.ownParams.set(name, v);
    return v;
  }

  /** A persistent buffer (like torch's register_buffer): in the state dict, never trained, not in parameters(). */
  protected addBuffer(name: string, init: Tensor): Variable {
    const v = ownedVariable(init, false);
    this.ownBuffers.set(name, v);
    return v;
  }

  /** All parameters as [fullName, variable], in registration order (the state-dict order). */
  namedParameters(prefix = ''): [string, Variable][] {
    const out: [string, Variable][] = [];
    for (const [n, v] of this.ownParams) out.push([prefix + n, v]);
    for (const [n, m] of this.childModules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** All buffers as [fullName, variable]. */
  namedBuffers(prefix = ''): [string, Variable][] {
    const out: [string, Variable][] = [];
    for (const [n, v] of this.ownBuffers) out.push([prefix + n, v]);
    for (const [n, m] of this.childModules) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers in PyTorch's state_dict order (per module: own params, own buffers, then children). */
  namedState(prefix = ''): [string, Variable][] {
    const out: [string, Variable][] = [];
    for (const [n, v] of this.ownParams) out.push([prefix + n, v]);
    for (const [n, v] of this.ownBuffers) out.push([prefix + n, v]);
    for (const [n, m] of this.childModules) out.push(...m.namedState(`${prefix}${n}.`));
    return out;
  }

  /**
   * Host copies of every parameter and buffer under the official names: float32, and int64 for integer buffers
   * (BatchNorm's num_batches_tracked, int64 in PyTorch).
   */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, v] of this.namedState()) {
      const data = hostCopy(v);
      sd.set(
        name,
        v.dtype === 'int32'
          ? { dtype: 'int64', shape: [...v.shape], data: BigInt64Array.from(data as Int32Array, (x) => BigInt(x)) }
          : { dtype: 'float32', shape: [...v.shape], data: data as Float32Array },
      );
    }
    return sd;
  }

  /**
   * Copies `sd` into the parameters and buffers (values are converted to the variable's dtype).
   * strict (default): every key must be present, no extra keys, and all shapes must match; otherwise one error lists
   * the missing keys, unexpected keys and shape mismatches. Non-strict: loads what matches by name and shape,
   * still throwing on shape mismatches of present keys, and returns the missing / unexpected lists.
   */
  loadStateDict(sd: StateDict, { strict = true }: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const own = new Map(this.namedState());
    const missing = [...own.keys()].filter((k) => !sd.has(k));
    const unexpected = [...sd.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of sd) {
      const v = own.get(k);
      if (v && !sameShape(v.shape, t.shape)) mismatched.push(`${k}: checkpoint [${t.shape}] vs model [${v.shape}]`);
    }
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
      if (mismatched.length) parts.push(`shape mismatches (${mismatched.length}): ${mismatched.join('; ')}`);
      throw new Error(`loadStateDict(${strict ? 'strict' : 'non-strict'}): ${parts.join('. ')}. ` +
        'Check that the model config (size, patch, registers, layer scale, FFN type) matches the checkpoint, ' +
        'or pass { strict: false } to load a subset.');
    }
    for (const [k, t] of sd) {
      const v = own.get(k);
      if (!v) continue;
      const host = hostToTensor(t, v.dtype as 'float32' | 'int32'), stored = backendCopy(host);
      v.assign(stored);
      tf.dispose([host, stored]);
    }
    return { missing, unexpected };
  }

  parameters(): Map<string, Variable> {
    return new Map(this.namedParameters());
  }

  /** Parameters the optimizer updates (excludes frozen ones). */
  trainableParameters(): Map<string, Variable> {
    return new Map(this.namedParameters().filter(([, v]) => v.trainable));
  }

  children(): Map<string, Module> {
    return this.childModules;
  }

  train(flag = true): this {
    this.training = flag;
    for (const m of this.childModules.values()) m.train(flag);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  numParameters(): number {
    return this.namedParameters().reduce((s, [, v]) => s + v.size, 0);
  }

  dispose(): void {
    for (const [, v] of this.namedState()) v.dispose();
  }
}

/** A variable over a backend-held copy of `init` (storage.ts), which it disposes. */
function ownedVariable(init: Tensor, trainable: boolean): Variable {
  const stored = backendCopy(init);
  const v = tf.variable(stored, trainable);
  tf.dispose([init, stored]);
  return v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A host tensor as a TF.js tensor of the given dtype (int64 / float64 narrowed). */
export function hostToTensor(t: HostTensor, dtype: 'float32' | 'int32' = 'float32'): Tensor {
  const src = t.data;
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (src.length !== n) throw new Error(`host tensor of shape [${t.shape}] holds ${src.length} values, expected ${n}`);
  const out = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  if (src instanceof BigInt64Array) for (let i = 0; i < n; i++) out[i] = Number(src[i]);
  else if (src instanceof Float32Array && dtype === 'float32') out.set(src);
  else for (let i = 0; i < n; i++) out[i] = src[i] as number;
  return tf.tensor(out, t.shape, dtype);
}
