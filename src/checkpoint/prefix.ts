// The one strip-a-prefix helper: the entries of a name → value map under `prefix`, with the prefix removed
// (`student.backbone.blocks.0...` → `backbone.blocks.0...`), and its inverse.

/** Entries whose key starts with `prefix`, keyed without it. */
export function subStateDict<T>(sd: Map<string, T>, prefix: string): Map<string, T> {
  return new Map([...sd].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
}

/** Every entry keyed with `prefix` in front. */
export function prefixStateDict<T>(prefix: string, sd: Map<string, T>): Map<string, T> {
  return new Map([...sd].map(([k, t]) => [`${prefix}${k}`, t]));
}
