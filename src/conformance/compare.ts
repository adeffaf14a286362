// Elementwise comparison with the fixture rule: pass iff |ours - ref| <= atol + rtol*|ref| (NaN positions must agree,
// infinities must be equal, int64 exact unless an atol is given).
import type { TensorEntry } from './manifest.js';
import { toFloat64, type BinTensor } from './tensor_io.js';

export interface CompareResult {
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  worstIndex: number;
  reason?: string;
}

export function compareTensor(ref: BinTensor, ours: BinTensor, entry: TensorEntry, atolPerElement?: Float64Array, scale = 1): CompareResult {
  if (ref.shape.length !== ours.shape.length || ref.shape.some((s, i) => s !== ours.shape[i])) {
    return { ok: false, maxAbs: NaN, maxRel: NaN, worstIndex: -1, reason: `shape [${ours.shape}] != [${ref.shape}]` };
  }
  const r = toFloat64(ref);
  const c = toFloat64(ours);
  const exact = ref.dtype === 'int64' && entry.atol === undefined;
  const atol = exact ? 0 : entry.atol ?? 0;
  const rtol = exact ? 0 : entry.rtol ?? 0;
  let ok = true;
  let maxAbs = 0;
  let maxRel = 0;
  let worstExcess = -Infinity;
  let worstIndex = -1;
  let reason: string | undefined;
  for (let i = 0; i < r.length; i++) {
    const a = r[i]!;
    const b = c[i]!;
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) {
        ok = false;
        reason ??= `NaN positions differ at ${i}`;
      }
      continue;
    }
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (a !== b) {
        ok = false;
        reason ??= `infinity mismatch at ${i}`;
      }
      continue;
    }
    const d = Math.abs(a - b);
    const bound = scale * ((atolPerElement ? atolPerElement[i]! : atol) + rtol * Math.abs(a));
    if (d > maxAbs) maxAbs = d;
    const rel = d / Math.max(Math.abs(a), 1e-30);
    if (rel > maxRel) maxRel = rel;
    if (d - bound > worstExcess) {
      worstExcess = d - bound;
      worstIndex = i;
    }
    if (d > bound) ok = false;
  }
  return { ok, maxAbs, maxRel, worstIndex, reason };
}
