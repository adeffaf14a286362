// Distribution statistics of block masks (to compare a MaskingGenerator with the official one over many draws).
//
//   const s = maskStatistics(gen, target, 2000, rng);
//   s.meanCount, s.stdCount (population std), s.minCount, s.maxCount, s.fracEqTarget, s.fracSingleComponent,
//   s.meanComponents (4-connected components per mask), s.rowProfile [H] / s.colProfile [W] (mean masked fraction of
//   each row / column), s.marginal [H*W] (how often each cell is masked).
import type { Rng } from '../util/rng.js';
import type { MaskingGenerator } from './masking.js';

export interface MaskStatistics {
  meanCount: number;
  stdCount: number;
  minCount: number;
  maxCount: number;
  fracEqTarget: number;
  fracSingleComponent: number;
  meanComponents: number;
  rowProfile: Float64Array;
  colProfile: Float64Array;
  marginal: Float64Array;
}

/** Number of 4-connected components of the masked cells of an H x W row-major mask. */
export function countComponents(mask: Uint8Array, H: number, W: number): number {
  const seen = new Uint8Array(H * W);
  const stack: number[] = [];
  let components = 0;
  for (let start = 0; start < H * W; start++) {
    if (!mask[start] || seen[start]) continue;
    components++;
    seen[start] = 1;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const i = Math.floor(p / W);
      const j = p - i * W;
      const visit = (q: number) => {
        if (mask[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      };
      if (i > 0) visit(p - W);
      if (i < H - 1) visit(p + W);
      if (j > 0) visit(p - 1);
      if (j < W - 1) visit(p + 1);
    }
  }
  return components;
}

export function maskStatistics(gen: MaskingGenerator, target: number, nDraws: number, rng: Rng): MaskStatistics {
  const H = gen.height;
  const W = gen.width;
  const marginal = new Float64Array(H * W);
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  let eqTarget = 0;
  let single = 0;
  let components = 0;
  for (let d = 0; d < nDraws; d++) {
    const mask = gen.generate(rng, target);
    let count = 0;
    for (let p = 0; p < mask.length; p++) {
      if (mask[p]) {
        count++;
        marginal[p]! += 1;
      }
    }
    sum += count;
    sumSq += count * count;
    min = Math.min(min, count);
    max = Math.max(max, count);
    if (count === target) eqTarget++;
    const c = countComponents(mask, H, W);
    components += c;
    if (c === 1) single++;
  }
  for (let p = 0; p < marginal.length; p++) marginal[p]! /= nDraws;
  const rowProfile = new Float64Array(H);
  const colProfile = new Float64Array(W);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      rowProfile[i]! += marginal[i * W + j]! / W;
      colProfile[j]! += marginal[i * W + j]! / H;
    }
  }
  const mean = sum / nDraws;
  return {
    meanCount: mean,
    stdCount: Math.sqrt(Math.max(0, sumSq / nDraws - mean * mean)),
    minCount: min,
    maxCount: max,
    fracEqTarget: eqTarget / nDraws,
    fracSingleComponent: single / nDraws,
    meanComponents: components / nDraws,
    rowProfile,
    colProfile,
    marginal,
  };
}
