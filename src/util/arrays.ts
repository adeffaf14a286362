// Typed-array helpers.

/** Joins arrays of one kind end to end, e.g. `concatArrays(Float32Array, crops)` or `concatArrays(Uint8Array, parts)`. */
export function concatArrays<T extends Float32Array | Uint8Array>(kind: new (length: number) => T, parts: readonly T[]): T {
  const out = new kind(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
