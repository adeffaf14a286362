// A minimal torch.nn.Module analogue: a tree of named children and parameters.
// Parameters are tf.Variables kept in PyTorch layout (Linear weight [out, in], Conv2d [out, in, kh, kw])
// under the official state-dict names, so checkpoint I/O, EMA and optimizers work on plain name maps.
import { tf, type Tensor, type Variable } from '../backend/tf.js';

export abstract class Module {
  private readonly childModules = new Map<string, Module>();
  private readonly ownParams = new Map<string, Variable>();
  /** Names of own parameters that are persistent but never trained (e.g. DINO v1 frozen weight_g). */
  private readonly frozen = new Set<string>();
  training = false;

  protected addModule<M extends Module>(name: string, m: M): M {
    this.childModules.set(name, m);
    return m;
  }

  protected addParam(name: string, init: Tensor, trainable = true): Variable {
    const v = tf.variable(init, trainable);
    if (!trainable) this.frozen.add(name);
    this.ownParams.set(name, v);
    init.dispose();
    return v;
  }

  /** All parameters as [fullName, variable], in registration order (the state-dict order). */
  namedParameters(prefix = ''): [string, Variable][] {
    const out: [string, Variable][] = [];
    for (const [n, v] of this.ownParams) out.push([prefix + n, v]);
    for (const [n, m] of this.childModules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
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
    for (const [, v] of this.namedParameters()) v.dispose();
  }
}
