// Recycles the Float32Arrays of disposed kernel outputs. A fresh `new Float32Array(n)` of a few MB costs 1-4 ms
// (zero-fill, page faults) — more than most kernels that write it — and a ViT training step allocates GBs.
//
// Only buffers this pool handed out are recycled, and never one that may still be visible elsewhere: a buffer is
// "escaped" once it is read out (readSync/read: the caller may keep the array), stored under a second dataId, or
// has a subarray view stored as another tensor's values (contiguous Slice/Split/Unpack).
const MIN_POOLED = 4096; // elements; small arrays are cheap to allocate
const MAX_POOLED_BYTES = 2 * 1024 ** 3;

const free = new Map<number, Float32Array[]>();
let pooledBytes = 0;
/** Buffers handed out by alloc, by their ArrayBuffer (views share it). */
const owned = new WeakMap<ArrayBufferLike, Float32Array>();
const escaped = new WeakSet<ArrayBufferLike>();

/** An uninitialised (possibly recycled) float32 buffer of n elements: the kernel must write every element. */
export function allocF32(n: number): Float32Array {
  if (n < MIN_POOLED) return new Float32Array(n);
  const list = free.get(n);
  const reused = list?.pop();
  if (reused) {
    pooledBytes -= reused.byteLength;
    return reused;
  }
  const fresh = new Float32Array(n);
  owned.set(fresh.buffer, fresh);
  return fresh;
}

/** Called when `values` become a tensor's storage: a second use of a pooled buffer (alias or view) escapes it. */
export function noteStored(values: unknown, isFirstStore: boolean): void {
  if (!ArrayBuffer.isView(values)) return;
  const parent = owned.get(values.buffer);
  if (parent && !(isFirstStore && parent === values)) escaped.add(values.buffer);
}

/** The values may now be held by code outside the backend (readSync): never recycle them. */
export function noteEscaped(values: unknown): void {
  if (ArrayBuffer.isView(values) && owned.has(values.buffer)) escaped.add(values.buffer);
}

/** Returns a buffer whose tensor was disposed (or a kernel's temporary) to the pool. */
export function recycle(values: unknown): void {
  if (!(values instanceof Float32Array) || owned.get(values.buffer) !== values || escaped.has(values.buffer)) return;
  if (pooledBytes + values.byteLength > MAX_POOLED_BYTES) return; // let GC free it
  let list = free.get(values.length);
  if (!list) free.set(values.length, (list = []));
  if (list.includes(values)) return;
  list.push(values);
  pooledBytes += values.byteLength;
}

/** Drops every pooled buffer (backend disposal, tests). */
export function clearPool(): void {
  free.clear();
  pooledBytes = 0;
}

export function poolStats(): { buffers: number; bytes: number } {
  let buffers = 0;
  for (const l of free.values()) buffers += l.length;
  return { buffers, bytes: pooledBytes };
}
