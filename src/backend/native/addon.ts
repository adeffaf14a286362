// Loads the dinots N-API addon (native/build/Release/dinots_native.node) and describes its functions.
// All buffers are Float32Arrays used in place (zero copy); outputs are allocated by the caller.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Precision of every later matmul: 'f32', or 'bf16' operands with f32 accumulation (throws where unsupported). */
  setMatmulPrecision(mode: 'f32' | 'bf16'): void;
  /** The buffer leaves the backend's sole control (may be rewritten): drop the matmul's bf16 and packed copies of it. */
  forgetCached(buffer: Float32Array): void;
  /** Buffers seen as Linear weights, how many of them are pre-packed, and the packed copies' bytes. */
  packCacheStats(): { entries: number; packed: number; bytes: number };
  /** The packed weights' budget from now on (0: never pack; DINOTS_PACK_CACHE_MB sets it at load); empties it. */
  setPackCacheMB(mb: number): void;
  /** Entries and bytes of the bf16 operand cache (DINOTS_BF16_CACHE_MB bounds it). */
  bf16CacheStats(): { entries: number; bytes: number };
  /** The bf16 operand cache's budget from now on (0: off); empties the cache. */
  setBf16CacheMB(mb: number): void;
  /** The instruction set oneDNN uses here, e.g. 'avx512_core_amx'. */
  cpuIsa(): string;
  /**
   * a [batchA, M, K] (or [batchA, K, M] when transA), b [batchB, K, N] (or [batchB, N, K]), out [max batch, M, N].
   * cache: bit 0 / bit 1 let the addon keep a form of a / b derived for later products (`cacheable`): a bf16 copy in
   * bf16 precision, b pre-packed when it is float32 Linear weights (transB, batch 1) used twice unchanged.
   */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batchA: number, batchB: number, M: number, K: number,
    N: number, transA: boolean, transB: boolean, bias: Float32Array | null, act: number, alpha: number, cache?: number): void;
  /**
   * Self-attention forward by groups of heads in cache: for q, k, v the [T, hd] blocks of qkv [B, T, 3, H, hd], writes
   * softmax(scale·q·kᵀ)·v into the head's columns of out [B, T, H·hd], and the probabilities into probs [B, H, T, T]
   * and the q, k, v blocks into heads [3, B, H, T, hd] when given. dims [B, T, H, hd]. Float32.
   */
  attentionHeads(qkv: Float32Array, out: Float32Array, dims: number[], scale: number, probs: Float32Array | null,
    heads?: Float32Array): void;
  /**
   * The gradient of attentionHeads: from the saved heads [3, B, H, T, hd] and probs [B, H, T, T], the output's
   * gradient dout [B, T, H·hd] and an optional gradient dprobs on the probabilities, writes dqkv [B, T, 3, H, hd].
   */
  attentionHeadsGrad(heads: Float32Array, probs: Float32Array, dout: Float32Array, dqkv: Float32Array, dims: number[],
    scale: number, dprobs: Float32Array | null): void;
  binary(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], out: Float32Array,
    outShape: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  fill(out: Float32Array, value: number): void;
  reduce(op: number, x: Float32Array, outer: number, R: number, inner: number, out: Float32Array): void;
  transpose(x: Float32Array, shape: number[], perm: number[], out: Float32Array): void;
  concat(inputs: Float32Array[], innerSizes: number[], outer: number, out: Float32Array): void;
  slice(x: Float32Array, shape: number[], begin: number[], size: number[], out: Float32Array): void;
  softmax(x: Float32Array, rows: number, cols: number, out: Float32Array, scale: number): void;
  softmaxGrad(y: Float32Array, dy: Float32Array, rows: number, cols: number, dx: Float32Array, scale: number): void;
  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, cols: number, eps: number,
    y: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  layerNormGrad(x: Float32Array, gamma: Float32Array, mean: Float32Array, rstd: Float32Array, dy: Float32Array,
    rows: number, cols: number, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array): void;
  gelu(x: Float32Array, y: Float32Array): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, lr: number, wd: number,
    beta1: number, beta2: number, eps: number, step: number, gradScale: number): void;
}

// Op codes: must match the enums in native/src/*.cc.
export const BINARY = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, Pow: 6, SquaredDifference: 7 } as const;
/** Binary op code that copies `a` broadcast to the output shape (b is ignored). */
export const BROADCAST_COPY = 8;
export const UNARY = {
  Neg: 0, Abs: 1, Exp: 2, Log: 3, Sqrt: 4, Rsqrt: 5, Square: 6, Relu: 7, Sigmoid: 8, Tanh: 9, Erf: 10,
  Reciprocal: 11, Log1p: 12, Relu6: 13, Step: 14, Softplus: 15, Expm1: 16, Sign: 17,
} as const;
export const REDUCE = { Sum: 0, Mean: 1, Max: 2, Min: 3, Prod: 4 } as const;
export const ACTIVATION = { linear: 0, relu: 1, sigmoid: 2, elu: 3, gelu: 4, leakyrelu: 5, relu6: 6 } as const;

export const ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/dinots_native.node', import.meta.url));

let cached: NativeAddon | null = null;

/** Loads the addon once; throws with the build command when it is missing. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(`${ADDON_PATH} not found; build it with: npm run build:native (needs apt-get install g++ libdnnl-dev)`);
  }
  // Idle OpenMP threads must sleep, not spin: the runtime reads this once, when it starts (at load).
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  return cached;
}
