import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/select.js';
import { tf } from '../../src/backend/tf.js';
import { IBOTPatchLoss } from '../../src/ssl/ibot_patch_loss.js';
import { koleoLoss } from '../../src/ssl/koleo_loss.js';
import { deriveMaskTensors, type MaskBatch } from '../../src/ssl/collate.js';

before(async () => {
  await initBackend('cpu');
});

const scalar = (t: tf.Tensor) => t.dataSync()[0]!;

test('KoLeo on 3 points by hand', () => {
  // normalised: a=(1,0), b=(0,1), c=(1,1)/sqrt2. nn(a)=c, nn(b)=c, nn(c)=a (tie with b: first index).
  const { loss, nnIndices } = koleoLoss(tf.tensor2d([[2, 0], [0, 3], [1, 1]]));
  assert.deepEqual(Array.from(nnIndices.dataSync()), [2, 2, 0]);
  // every pair distance is |a - c| = sqrt(2 - sqrt2)
  const expected = -Math.log(Math.sqrt(2 - Math.SQRT2));
  assert.ok(Math.abs(scalar(loss) - expected) < 1e-6, `${scalar(loss)} vs ${expected}`);
});

test('KoLeo is differentiable', () => {
  const g = tf.grad((x: tf.Tensor) => koleoLoss(x).loss)(tf.randomNormal([5, 4], 0, 1, 'float32', 3));
  const v = g.dataSync();
  assert.ok(v.every(Number.isFinite) && v.some((x) => Math.abs(x) > 1e-4));
});

const masks: MaskBatch = {
  // 3 images x 4 patches: image0 masks 2, image1 none, image2 masks 1
  data: Uint8Array.from([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
  shape: [3, 4],
};

test('iBOT forwardMasked by hand: 1/count weights, divided by all images', () => {
  const loss = new IBOTPatchLoss(2);
  // student logits/0.1: rows [0,0] -> p=(1/2,1/2); teacher one-hot rows
  const s = tf.zeros([3, 2]);
  const t = tf.tensor2d([[1, 0], [0, 1], [1, 0]]);
  // per patch -sum t log p = ln 2; weights 1/2, 1/2, 1; sum = 2 ln 2; / 3 images
  assert.ok(Math.abs(scalar(loss.forwardMasked(s, t, masks)) - (2 * Math.LN2) / 3) < 1e-6);
  const { masksWeight } = deriveMaskTensors(masks);
  assert.deepEqual(Array.from(masksWeight), [0.5, 0.5, 1]);
  // padded rows past nMaskedPatches are dropped
  const sPad = tf.concat([s, tf.fill([2, 2], 5)]);
  const tPad = tf.concat([t, tf.tensor2d([[1, 0], [1, 0]])]);
  assert.ok(Math.abs(scalar(loss.forwardMasked(sPad, tPad, masks, { nMaskedPatches: 3, masksWeight })) - (2 * Math.LN2) / 3) < 1e-6);
  assert.throws(() => loss.forwardMasked(sPad, tPad, masks), /masks weights/);
  loss.dispose();
});

test('iBOT: the unmasked forward API equals forwardMasked on the gathered masked patches', () => {
  const K = 8;
  const loss = new IBOTPatchLoss(K);
  const s = tf.randomNormal([3, 4, K], 0, 1, 'float32', 11);
  const t = tf.softmax(tf.randomNormal([3, 4, K], 0, 1, 'float32', 12));
  const { maskIndices } = deriveMaskTensors(masks);
  const idx = tf.tensor1d(maskIndices, 'int32');
  const masked = loss.forwardMasked(tf.gather(s.reshape([12, K]), idx), tf.gather(t.reshape([12, K]), idx), masks);
  assert.ok(Math.abs(scalar(loss.forward(s, t, masks)) - scalar(masked)) < 1e-5);
  loss.dispose();
});

test('iBOT center: mean over patches then images, pending until the next softmax', () => {
  const loss = new IBOTPatchLoss(2);
  // [1, 2, 2] buffer whose rows average to [1, 2]
  loss.updateCenter(tf.tensor3d([[[0, 4], [2, 0]]]));
  assert.deepEqual(Array.from(loss.center.value.dataSync()), [0, 0]);
  const p = loss.softmaxCenterTeacher(tf.zeros([3, 2]), 1);
  assert.deepEqual(p.shape, [3, 2]);
  const c = loss.center.value.dataSync();
  assert.ok(Math.abs(c[0]! - 0.1) < 1e-6 && Math.abs(c[1]! - 0.2) < 1e-6, `center ${c}`);
  assert.deepEqual(loss.stateDict().get('center')!.shape, [1, 1, 2]);
  loss.dispose();
});
