// tf.variableGrads with the memory of a PyTorch backward pass. TF.js keeps every tensor saved for the backward pass
// and every intermediate gradient until the whole backward pass ends, and what a gradient function makes outside its
// per-input thunks (a customGrad's eager products, reshaped dys) as long; its peak is about twice the forward's
// activations. This walks the same tape in the same order with the same gradient functions, but drops a node's saved
// tensors and temporaries as soon as its gradient has run, and an intermediate gradient as soon as the node that
// produced the tensor has used it. With the buffer pool's best fit and linear's lean tape node, a ViT-S/16 batch-8
// training process peaks at about 1.2 GB instead of 1.8. Values are bit-identical to tf.variableGrads
// (test/backend/grads.test.ts).
import { tf, type Tensor, type Variable } from './tf.js';

/** The parts of a TF.js tape node used here (tfjs-core's TapeNode, not exported by the package). */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, Tensor>;
  outputs: Tensor[];
  saved?: Tensor[];
  gradient?: (dys: (Tensor | null)[]) => Record<string, () => Tensor>;
}

/** The engine internals that tf.variableGrads itself uses (tfjs-core 4.x Engine). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** The nodes on a path from one of `xs` to `y`, in tape order, each with only its inputs that depend on `xs`. */
function nodesFromXsToY(tape: TapeNode[], xs: Tensor[], y: Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodesFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const leadToY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => leadToY.has(o.id))) {
      nodesToY.add(node.id);
      for (const t of Object.values(node.inputs)) leadToY.add(t.id);
    }
  }
  return tape
    .filter((n) => nodesFromX.has(n.id) && nodesToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}

/**
 * Backpropagates from y (gradient ones) through `nodes`; returns the gradients of `xs` (null where unconnected).
 * `release` says whether saved tensors may be dropped early (false while a higher-order gradient is being taped).
 */
function backprop(engine: EngineInternals, nodes: TapeNode[], xs: Tensor[], y: Tensor, release: boolean): (Tensor | null)[] {
  const wanted = new Set(xs.map((x) => x.id));
  const grads = new Map<number, Tensor>([[y.id, tf.onesLike(y)]]);
  const held = new Set<Tensor>(grads.values()); // the tensor objects in `grads`, so that none is stored twice
  const drop = (id: number) => {
    const g = grads.get(id);
    if (!g) return;
    grads.delete(id);
    held.delete(g);
    g.dispose();
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    // The gradient function and its per-input thunks run in one scope that keeps only the input gradients: whatever
    // else they create (reshaped dys, a customGrad's products before their final reshape) is freed with it, not at
    // the end of the whole backward pass.
    const names = Object.keys(node.inputs);
    const dxs = engine.tidy(`grad ${node.kernelName}`, () => {
      const inputGrads = node.gradient!(node.outputs.map((o) => grads.get(o.id) ?? null));
      return names.map((name) => {
        if (!(name in inputGrads)) {
          throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGrads)}.`);
        }
        return inputGrads[name]!();
      });
    });
    for (const [j, name] of names.entries()) {
      const x = node.inputs[name]!;
      let dx = dxs[j]!;
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`);
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`);
      }
      // A gradient function may pass its dy (or one tensor for two inputs) straight through: give it its own handle
      // (same data) so that dropping one gradient never disposes another.
      if (held.has(dx)) dx = dx.clone();
      const prev = grads.get(x.id);
      if (prev) {
        const sum = tf.add(prev, dx);
        drop(x.id);
        dx.dispose();
        dx = sum;
      }
      grads.set(x.id, dx);
      held.add(dx);
    }
    // Every consumer of this node's outputs came later on the tape, so their gradients are complete and used.
    for (const o of node.outputs) if (!wanted.has(o.id)) drop(o.id);
    if (release) for (const t of node.saved ?? []) t.dispose();
  }
  return xs.map((x) => grads.get(x.id) ?? null);
}

/**
 * tf.variableGrads(f, varList): the value of the scalar f() and its gradients with respect to the trainable variables
 * of varList (all trainable variables when omitted), keyed by variable name; non-trainable ones map to null.
 */
export function variableGrads(f: () => tf.Scalar, varList?: Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tf.engine() as unknown as EngineInternals;
  const all = varList ?? Object.values(tf.engine().registeredVariables);
  const trainable = all.filter((v) => v.trainable);
  if (trainable.length === 0) {
    throw new Error(`variableGrads() expects at least one of the input variables to be trainable, but none of the ${all.length} variables is trainable.`);
  }
  const y = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => engine.tidy('forward', f));
  if (!(y instanceof tf.Tensor) || y.rank !== 0) {
    throw new Error(`The f passed in variableGrads(f) must return a scalar, but it returned a rank-${(y as Tensor).rank} tensor`);
  }
  const outer = engine.state.gradientDepth === 0;
  const tape = engine.state.activeTape ?? [];
  const nodes = nodesFromXsToY(tape, trainable, y);
  const grads = engine.tidy('backward', () => {
    const gs = backprop(engine, nodes, trainable, y, outer);
    if (outer) {
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
    }
    const named: tf.NamedTensorMap = {};
    trainable.forEach((v, i) => {
      if (gs[i]) named[v.name] = gs[i]!;
    });
    return named;
  });
  if (Object.keys(grads).length === 0) {
    throw new Error('Cannot find a connection between any variable and the result of the loss function y=f(x). Please make sure the operations that use variables are inside the function f passed to minimize().');
  }
  // As tf.variableGrads: variables named in varList that are not trainable map to null.
  const result: Record<string, Tensor | null> = grads;
  if (varList) for (const v of varList) if (!v.trainable) result[v.name] = null;
  return { value: y as tf.Scalar, grads };
}
