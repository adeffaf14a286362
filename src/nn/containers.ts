// Containers that name their children by index, like torch.nn.ModuleList / nn.Sequential ("blocks.0", "mlp.2").
import { Module } from './module.js';

export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  push(m: M): M {
    this.addModule(String(this.items.length), m);
    this.items.push(m);
    return m;
  }

  /** Registers `m` under an explicit index (nn.Sequential keeps parameter-free layers such as GELU in the count). */
  set(index: number, m: M): M {
    this.addModule(String(index), m);
    this.items.push(m);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
