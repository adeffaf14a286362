// AdamW over named variables, with parameter groups, matching torch.optim.AdamW (decoupled weight decay:
// p ← p·(1 − lr·wd), then the Adam update with bias correction). A parameter with no gradient in a step is skipped
// entirely, as torch skips `p.grad is None` (no decay, no moment update, its step count does not advance).
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import type { HostTensor, StateDict } from '../checkpoint/types.js';
import { adamwStep } from '../backend/adamw_kernel.js';

/** A set of parameters sharing lr / weight-decay multipliers (the scheduled lr and wd are multiplied by them). */
export interface ParamGroup {
  name: string;
  params: string[];
  lrMult: number;
  wdMult: number;
}

/**
 * The official DINO v1 `utils.get_params_groups`: biases and 1-D parameters get no weight decay, everything else
 * (including cls_token and pos_embed) is decayed. Frozen parameters are left out.
 */
export function dinoParamGroups(params: Map<string, Variable>): ParamGroup[] {
  const regularized: string[] = [];
  const notRegularized: string[] = [];
  for (const [name, v] of params) {
    if (!v.trainable) continue;
    if (name.endsWith('.bias') || v.shape.length === 1) notRegularized.push(name);
    else regularized.push(name);
  }
  return [
    { name: 'regularized', params: regularized, lrMult: 1, wdMult: 1 },
    { name: 'not_regularized', params: notRegularized, lrMult: 1, wdMult: 0 },
  ];
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
}

interface ParamState {
  step: number;
  m: Variable;
  v: Variable;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly state = new Map<string, ParamState>();
  private readonly groupOf = new Map<string, ParamGroup>();

  constructor(
    private readonly params: Map<string, Variable>,
    readonly groups: ParamGroup[],
    opts: AdamWOptions = {},
  ) {
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    for (const g of groups) {
      for (const n of g.params) {
        if (!params.has(n)) throw new Error(`AdamW: parameter group '${g.name}' names '${n}', which is not a parameter`);
        if (this.groupOf.has(n)) throw new Error(`AdamW: parameter '${n}' is in two groups`);
        this.groupOf.set(n, g);
      }
    }
  }

  /**
   * One update. `grads` maps parameter names to gradients; parameters without an entry are not touched.
   * `lr` and `wd` are the scheduled values; each group scales them by its multipliers.
   */
  step(grads: Map<string, Tensor>, lr: number, wd: number): void {
    for (const [name, g] of grads) {
      const group = this.groupOf.get(name);
      if (!group) throw new Error(`AdamW: got a gradient for '${name}', which is in no parameter group`);
      const p = this.params.get(name)!;
      let st = this.state.get(name);
      if (!st) {
        st = { step: 0, m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) };
        this.state.set(name, st);
      }
      st.step += 1;
      // The fused native kernel when the backend is `native`, TF.js ops otherwise (backend/adamw_kernel.ts).
      adamwStep([p], [g], [st.m], [st.v], lr * group.lrMult, wd * group.wdMult, this.beta1, this.beta2, this.eps, st.step);
    }
  }

  /** Optimizer state as host tensors: `<param>.exp_avg`, `<param>.exp_avg_sq`, `<param>.step` (float64 scalar). */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, st] of this.state) {
      out.set(`${name}.exp_avg`, hostOf(st.m));
      out.set(`${name}.exp_avg_sq`, hostOf(st.v));
      out.set(`${name}.step`, { dtype: 'float64', shape: [], data: Float64Array.of(st.step) });
    }
    return out;
  }

  loadStateDict(sd: StateDict): void {
    this.disposeState();
    for (const [key, t] of sd) {
      if (!key.endsWith('.step')) continue;
      const name = key.slice(0, -'.step'.length);
      const p = this.params.get(name);
      if (!p) throw new Error(`optimizer state names '${name}', which is not a parameter of this model`);
      const m = sd.get(`${name}.exp_avg`);
      const v = sd.get(`${name}.exp_avg_sq`);
      if (!m || !v) throw new Error(`optimizer state for '${name}' lacks exp_avg / exp_avg_sq`);
      for (const [what, h] of [['exp_avg', m], ['exp_avg_sq', v]] as const) {
        if (h.shape.join(',') !== p.shape.join(',')) {
          throw new Error(`optimizer state ${name}.${what} has shape [${h.shape}], the parameter has [${p.shape}]`);
        }
      }
      this.state.set(name, {
        step: Number(t.data[0]),
        m: tf.variable(tf.tensor(Float32Array.from(m.data as ArrayLike<number>), m.shape, 'float32'), false),
        v: tf.variable(tf.tensor(Float32Array.from(v.data as ArrayLike<number>), v.shape, 'float32'), false),
      });
    }
  }

  /** Adam step count of one parameter (0 before its first update). */
  stepOf(name: string): number {
    return this.state.get(name)?.step ?? 0;
  }

  private disposeState(): void {
    for (const st of this.state.values()) {
      st.m.dispose();
      st.v.dispose();
    }
    this.state.clear();
  }

  dispose(): void {
    this.disposeState();
  }
}

function hostOf(v: Variable): HostTensor {
  return { dtype: 'float32', shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
}
