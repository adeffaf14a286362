// The one place that imports TF.js. Import `tf` from here, never from '@tensorflow/tfjs' directly:
// the union package registers the gradients and chained ops that tfjs-core alone lacks.
import * as tf from '@tensorflow/tfjs';

// tfjs-backend-cpu prints a "use tfjs-node" banner on first use under Node; PROD silences it.
tf.env().set('PROD', true);

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;
