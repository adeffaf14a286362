// Recycles the Float32Arrays of disposed kernel outputs. A fresh `new Float32Array(n)` of a few MB costs 1-4 ms
// (zero-fill, page faults) — more than most kernels that write it — and a ViT training step allocates GBs.
//
// Only buffers this pool handed out are recycled, and never one that may still be visible elsewhere: a buffer is
// "escaped" once it is read out (readSync/read: the caller may keep the array), stored under a second dataId, or
// has a subarray view stored as another tensor's values (contiguous Slice/Split/Unpack).
const MIN_POOLED = 4096; // elements; small arrays are cheap to allocate
/** Bytes kept for reuse at most (DINOTS_POOL_MB); above it, recycled buffers are left to the GC. */
let MAX_POOLED_BYTES = poolLimitBytes(process.env.DINOTS_POOL_MB);

function poolLimitBytes(env: string | undefined): number {
  if (env === undefined || env === '') return 2 * 1024 ** 3;
  const mb = Number(env);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`DINOTS_POOL_MB must be a number of MiB >= 0, got '${env}'`);
  return mb * 1024 ** 2;
}

// Capacity (elements) → free buffers, in least-recently-used order of the classes (a Map keeps insertion order; a
// class is re-inserted when used). When the pool is full, the stalest classes go first: after a change of shapes
// (another model, an eval pass, other crop sizes) the old sizes make room instead of blocking the pool forever.
const free = new Map<number, Float32Array[]>();
let pooledBytes = 0;
/** The array each pooled buffer was last handed out as (the whole buffer or a view of its start), by ArrayBuffer. */
const owned = new WeakMap<ArrayBufferLike, Float32Array>();
/** The whole array of each pooled buffer, by ArrayBuffer. */
const bases = new WeakMap<ArrayBufferLike, Float32Array>();
const escaped = new WeakSet<ArrayBufferLike>();
/**
 * A request with no free buffer of its exact size takes the smallest free one up to this factor larger, as a view of
 * its start. A training step's weight gradients (e.g. ViT-S/16 fc1: 1536 × 384) then live in activation buffers
 * (1576 × 384) freed by the backward pass and give them back for the next forward pass, instead of keeping sizes of
 * their own idle in the pool through it (85 MB for ViT-S/16).
 */
const BEST_FIT_SLACK = 1.5;

let onRelease: ((buffer: Float32Array) => void) | null = null;

/**
 * `hook` sees every buffer this pool handed out when it leaves the backend's sole control: given back (its tensor
 * disposed, or a kernel's temporary) or escaped to other code. The native matmul drops what it derived from the
 * buffer then (bf16 copies, packed weights; see `cacheable`). null: none.
 */
export function setReleaseHook(hook: ((buffer: Float32Array) => void) | null): void {
  onRelease = hook;
}

function escape(buffer: ArrayBufferLike): void {
  if (escaped.has(buffer)) return;
  escaped.add(buffer);
  onRelease?.(owned.get(buffer)!);
}

/** An uninitialised (possibly recycled) float32 buffer of n elements: the kernel must write every element. */
export function allocF32(n: number): Float32Array {
  if (n < MIN_POOLED) return new Float32Array(n);
  const base = take(n);
  if (base) {
    pooledBytes -= base.byteLength;
    const out = base.length === n ? base : base.subarray(0, n);
    owned.set(base.buffer, out);
    return out;
  }
  const fresh = new Float32Array(n);
  owned.set(fresh.buffer, fresh);
  bases.set(fresh.buffer, fresh);
  return fresh;
}

/** A free buffer of exactly n elements, else the smallest one of up to BEST_FIT_SLACK · n; null if none. */
function take(n: number): Float32Array | null {
  let cap = free.get(n)?.length ? n : 0;
  if (!cap) {
    for (const [c, list] of free) if (c > n && c <= n * BEST_FIT_SLACK && list.length && (!cap || c < cap)) cap = c;
  }
  if (!cap) return null;
  const list = free.get(cap)!;
  const base = list.pop()!;
  touch(cap, list);
  return base;
}

/** Called when `values` become a tensor's storage: a second use of a pooled buffer (alias or view) escapes it. */
export function noteStored(values: unknown, isFirstStore: boolean): void {
  if (!ArrayBuffer.isView(values)) return;
  const parent = owned.get(values.buffer);
  if (parent && !(isFirstStore && parent === values)) escape(values.buffer);
}

/**
 * Whether the native matmul may keep a form of `values` derived from them (a bf16 copy, packed weights) while they
 * live: only for buffers this pool handed out and that never escaped, since nothing rewrites those except after
 * they are given back (which the release hook reports) and AdamW (which tells the addon itself). Arrays from user
 * code may be refilled behind the backend's back.
 */
export function cacheable(values: Float32Array): boolean {
  return owned.has(values.buffer) && !escaped.has(values.buffer);
}

/** addon.matmul's `cache` argument for operands a and b. */
export function cacheMask(a: Float32Array, b: Float32Array): number {
  return (cacheable(a) ? 1 : 0) | (cacheable(b) ? 2 : 0);
}

/** The values may now be held by code outside the backend (readSync): never recycle them. */
export function noteEscaped(values: unknown): void {
  if (ArrayBuffer.isView(values) && owned.has(values.buffer)) escape(values.buffer);
}

/** Returns a buffer whose tensor was disposed (or a kernel's temporary) to the pool. */
export function recycle(values: unknown): void {
  if (!(values instanceof Float32Array) || owned.get(values.buffer) !== values || escaped.has(values.buffer)) return;
  onRelease?.(values);
  const base = bases.get(values.buffer)!;
  let list = free.get(base.length);
  if (list?.includes(base)) return;
  if (pooledBytes + base.byteLength > MAX_POOLED_BYTES) evictFor(base.byteLength, base.length);
  if (pooledBytes + base.byteLength > MAX_POOLED_BYTES) return; // let GC free it
  if (!list) list = [];
  list.push(base);
  touch(base.length, list);
  pooledBytes += base.byteLength;
}

/** Marks a size class as the most recently used. */
function touch(n: number, list: Float32Array[]): void {
  free.delete(n);
  free.set(n, list);
}

/** Drops buffers of the least recently used size classes (never `keep`) until `bytes` more fit under the limit. */
function evictFor(bytes: number, keep: number): void {
  for (const [n, list] of free) {
    if (pooledBytes + bytes <= MAX_POOLED_BYTES) return;
    if (n === keep) continue;
    while (list.length && pooledBytes + bytes > MAX_POOLED_BYTES) pooledBytes -= list.pop()!.byteLength;
    if (!list.length) free.delete(n);
  }
}

/** Drops every pooled buffer (backend disposal, tests). */
export function clearPool(): void {
  free.clear();
  pooledBytes = 0;
}

/** Changes the pool limit (tests; DINOTS_POOL_MB sets it at load) and evicts down to it. */
export function setPoolLimitBytes(bytes: number): void {
  MAX_POOLED_BYTES = bytes;
  evictFor(0, -1);
}

export function poolStats(): { buffers: number; bytes: number } {
  let buffers = 0;
  for (const l of free.values()) buffers += l.length;
  return { buffers, bytes: pooledBytes };
}
