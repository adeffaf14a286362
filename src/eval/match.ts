// Patch correspondences between two images: mutual nearest neighbours of L2-normalised patch features (patch i of A
// and patch j of B match when j is i's most similar patch in B and i is j's most similar patch in A).
import { tf } from '../backend/tf.js';
import type { Matrix } from '../util/matrix.js';

export interface Correspondence {
  /** Patch index in A and in B (row-major over each patch grid). */
  a: number;
  b: number;
  /** Cosine similarity of the two patches. */
  similarity: number;
}

/** Mutual nearest neighbours, most similar first. Ties pick the lower index (as argmax). */
export function mutualNearestNeighbours(a: Matrix, b: Matrix): Correspondence[] {
  if (a.cols !== b.cols) throw new Error(`match: feature widths differ (${a.cols} vs ${b.cols})`);
  const sim = tf.tidy(() => {
    const na = tf.tensor2d(a.data, [a.rows, a.cols]);
    const nb = tf.tensor2d(b.data, [b.rows, b.cols]);
    const unit = (t: tf.Tensor2D) => tf.div(t, tf.maximum(tf.norm(t, 'euclidean', 1, true), 1e-12));
    return tf.matMul(unit(na), unit(nb), false, true);
  });
  const s = sim.dataSync() as Float32Array;
  sim.dispose();
  const bestB = new Int32Array(a.rows);
  const bestA = new Int32Array(b.rows);
  const colBest = new Float32Array(b.rows).fill(-Infinity);
  for (let i = 0; i < a.rows; i++) {
    let best = 0;
    for (let j = 0; j < b.rows; j++) {
      const v = s[i * b.rows + j]!;
      if (v > s[i * b.rows + best]!) best = j;
      if (v > colBest[j]!) {
        colBest[j] = v;
        bestA[j] = i;
      }
    }
    bestB[i] = best;
  }
  const out: Correspondence[] = [];
  for (let i = 0; i < a.rows; i++) if (bestA[bestB[i]!] === i) out.push({ a: i, b: bestB[i]!, similarity: s[i * b.rows + bestB[i]!]! });
  return out.sort((x, y) => y.similarity - x.similarity || x.a - y.a);
}
