// Gradient clipping over a name → gradient map. Both return a new map; the caller disposes the old gradients.
import { tf, type Tensor } from '../backend/tf.js';

/**
 * DINO v1 `utils.clip_gradients`: each gradient separately is scaled by clip/(‖g‖+1e-6) when that factor is < 1.
 * Done on-device (g·min(1, coef)), so no host sync per parameter; multiplying by exactly 1 leaves g unchanged.
 */
export function clipPerParam(grads: Map<string, Tensor>, clip: number): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, g] of grads) {
    out.set(
      name,
      tf.tidy(() => {
        const coef = tf.div(clip, tf.add(tf.norm(g), 1e-6));
        return tf.mul(g, tf.minimum(coef, 1));
      }),
    );
  }
  return out;
}

/**
 * torch.nn.utils.clip_grad_norm_ (DINOv2): all gradients scaled together by min(1, max/(total‖g‖+1e-6)).
 * Returns the clipped gradients and the total norm before clipping (a scalar tensor owned by the caller).
 */
export function clipGlobalNorm(grads: Map<string, Tensor>, maxNorm: number): { grads: Map<string, Tensor>; totalNorm: Tensor } {
  const totalNorm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const coef = tf.tidy(() => tf.minimum(tf.div(maxNorm, tf.add(totalNorm, 1e-6)), 1));
  const out = new Map<string, Tensor>();
  for (const [name, g] of grads) out.set(name, tf.mul(g, coef));
  coef.dispose();
  return { grads: out, totalNorm };
}

/**
 * DINO v1 `utils.cancel_gradients_last_layer`: while epoch < freezeLastLayer the head's last layer gets no gradient
 * (so AdamW skips it: no update, no weight decay). Disposes and removes those entries in place. The trainer counts both
 * in iterations (epoch < F ⟺ iteration < F · epoch length).
 */
export function cancelLastLayerGradients(grads: Map<string, Tensor>, epoch: number, freezeLastLayer: number): void {
  if (epoch >= freezeLastLayer) return;
  for (const [name, g] of [...grads]) {
    if (name.includes('last_layer')) {
      g.dispose();
      grads.delete(name);
    }
  }
}
