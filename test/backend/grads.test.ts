// variableGrads (src/backend/grads.ts) against tf.variableGrads: the same values, bit for bit, on a small ViT and on
// graphs with shared inputs, pass-through gradients and unconnected variables; and a lower peak of live tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, type Tensor } from '../../src/backend/tf.js';
import { variableGrads } from '../../src/backend/grads.js';
import { linear } from '../../src/nn/functional.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { dinov2Config } from '../../src/models/config.js';
import { nativeSkip } from './native_helpers.js';

const bits = (t: Tensor) => [...new Uint32Array(Float32Array.from(t.dataSync()).buffer)];

function compare(f: () => tf.Scalar, vars: tf.Variable[]) {
  const want = tf.variableGrads(f, vars);
  const got = variableGrads(f, vars);
  assert.deepEqual(bits(got.value), bits(want.value));
  assert.deepEqual(Object.keys(got.grads).sort(), Object.keys(want.grads).sort());
  for (const [name, g] of Object.entries(want.grads)) {
    if (g === null) assert.equal(got.grads[name], null, name);
    else assert.deepEqual(bits(got.grads[name]!), bits(g), `gradient of ${name}`);
  }
  tf.dispose([want.value, got.value, ...Object.values(want.grads), ...Object.values(got.grads)].filter((t): t is Tensor => t !== null));
}

test('variableGrads equals tf.variableGrads: shared inputs, pass-through gradients, unconnected and frozen variables', async () => {
  await tf.setBackend('cpu');
  const a = tf.variable(tf.tensor([[1, -2], [3, 0.5]]), true, 'ga');
  const b = tf.variable(tf.tensor([0.25, -1]), true, 'gb');
  const unused = tf.variable(tf.tensor([7]), true, 'gunused');
  const frozen = tf.variable(tf.tensor([2, 3]), false, 'gfrozen');
  // Gradients that are the incoming dy itself, for one input and for two.
  const passThrough = tf.customGrad(((x: Tensor) => ({ value: x.clone(), gradFunc: (dy: Tensor) => dy })) as never) as unknown as (x: Tensor) => Tensor;
  const addBoth = tf.customGrad(((x: Tensor, z: Tensor) => ({ value: tf.add(x, z), gradFunc: (dy: Tensor) => [dy, dy] })) as never) as unknown as
    (x: Tensor, z: Tensor) => Tensor;
  const before = tf.memory().numTensors;
  compare(() => {
    const h = tf.add(tf.matMul(a, a), b); // a used twice by one op, b broadcast
    const id = passThrough(addBoth(h, tf.mul(h, 2)));
    const r = tf.add(id, tf.mul(id, frozen)); // id consumed twice
    return tf.sum(tf.add(tf.relu(r), tf.reshape(h, [4]).sum())) as tf.Scalar;
  }, [a, b, unused, frozen]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  tf.dispose([a, b, unused, frozen]);
});

for (const backend of ['cpu', 'native']) {
  const skip = backend === 'native' ? nativeSkip : false;
  test(`variableGrads equals tf.variableGrads on a DINOv2 ViT with registers and LayerScale (${backend})`, { skip }, async () => {
    await tf.setBackend(backend);
    await vitCase();
  });
}

async function vitCase() {
  const config = dinov2Config('tiny', 2, { imgSize: 28, patchSize: 14, embedDim: 48, depth: 2, numHeads: 3 });
  const model = new VisionTransformer(config, { seed: 3 });
  const x = tf.randomNormal([2, 3, 28, 28], 0, 1, 'float32', 5);
  const vars = [...model.trainableParameters().values()];
  const before = tf.memory().numTensors;
  compare(() => tf.sum(tf.square(model.forward(x))) as tf.Scalar, vars);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  x.dispose();
  model.dispose();
}

/** An identity op whose gradient records `read()` (live bytes or tensors) when the backward pass reaches it. */
function bottomProbe(read: () => number) {
  const probe = { seen: 0, apply: (x: Tensor) => x };
  probe.apply = tf.customGrad(((x: Tensor) => ({
    value: x.clone(),
    gradFunc: (dy: Tensor) => {
      probe.seen = read();
      return dy.clone();
    },
  })) as never) as unknown as (x: Tensor) => Tensor;
  return probe;
}

test('variableGrads frees saved tensors and intermediate gradients during the backward pass', async () => {
  await tf.setBackend('cpu');
  // A chain of 20 layers; at the first layer's gradient, TF.js still holds every layer's saved input and gradient.
  const w = tf.variable(tf.fill([64, 64], 0.01), true, 'chainw');
  const probe = bottomProbe(() => tf.memory().numBytes);
  const loss = () => {
    let h = probe.apply(tf.matMul(tf.ones([64, 64]), w));
    for (let i = 0; i < 20; i++) h = tf.tanh(tf.matMul(h, w));
    return tf.sum(h) as tf.Scalar;
  };
  const run = (grads: typeof variableGrads) => {
    const r = grads(loss, [w]);
    tf.dispose([r.value, ...Object.values(r.grads).filter((g): g is Tensor => g !== null)]);
    return probe.seen;
  };
  const theirs = run(tf.variableGrads as typeof variableGrads), ours = run(variableGrads);
  // Each layer keeps 2-3 tensors of 16 KB alive in TF.js until the end: ≥ 40 of them at the bottom.
  assert.ok(theirs - ours > 40 * 64 * 64 * 4, `live bytes at the first layer's gradient: ours ${ours}, tf.variableGrads ${theirs}`);
  w.dispose();
});

test('variableGrads frees what a gradient function creates besides the input gradients, node by node', async () => {
  await tf.setBackend('cpu');
  // A customGrad computes its gradients eagerly; the temporaries it makes on the way (here a 16 KB product) are freed
  // with its node, not kept until the whole backward pass ends.
  const w = tf.variable(tf.fill([64, 64], 0.01), true, 'tmpw');
  const layer = tf.customGrad(((x: Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    return { value: tf.tanh(x), gradFunc: (dy: Tensor, [s]: Tensor[]) => tf.mul(tf.mul(dy, tf.sub(1, tf.square(tf.tanh(s!)))), 1) };
  }) as never) as unknown as (x: Tensor) => Tensor;
  const probe = bottomProbe(() => tf.memory().numTensors);
  const r = variableGrads(() => {
    let h = probe.apply(tf.matMul(tf.ones([64, 64]), w));
    for (let i = 0; i < 20; i++) h = layer(tf.matMul(h, w));
    return tf.sum(h) as tf.Scalar;
  }, [w]);
  tf.dispose([r.value, ...Object.values(r.grads).filter((g): g is Tensor => g !== null)]);
  // Each layer's gradient function makes 5 temporaries; kept to the end they would be 100 tensors at the bottom.
  assert.ok(probe.seen < 60, `${probe.seen} tensors alive at the first layer's gradient`);
  w.dispose();
});

test('linear records x and w for its gradient, not its output', async () => {
  await tf.setBackend('cpu');
  const engine = tf.engine() as unknown as { state: { activeTape: { saved?: Tensor[] }[] | null }; startTape(): void; endTape(): void };
  const x = tf.ones([2, 5, 7]), w = tf.ones([300, 7]), b = tf.ones([300]);
  engine.startTape();
  try {
    const y = linear(x, w, b);
    const saved = (engine.state.activeTape ?? []).flatMap((n) => n.saved ?? []).map((t) => t.size);
    assert.ok(!saved.includes(y.size), `saved sizes ${saved}: the output (${y.size}) must not be kept`);
    assert.ok(saved.includes(x.size) && saved.includes(w.size));
    y.dispose();
  } finally {
    for (const n of engine.state.activeTape ?? []) for (const t of n.saved ?? []) t.dispose();
    engine.endTape();
    engine.state.activeTape = null;
  }
  tf.dispose([x, w, b]);
});
