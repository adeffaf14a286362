// Matmul over oneDNN: batched, with transposes expressed as strides (no copies), batch broadcasting of one side,
// and an optional fused bias + activation. Primitives are cached by shape so repeated calls skip creation.
// Precision bf16 (opt-in mixed precision): both operands are rounded to bfloat16 and multiplied with float32
// accumulation and output, which runs on AMX / AVX512-BF16 where the CPU has them. oneDNN 2.6 ignores the
// fpmath_mode attribute for f32 matmul, hence the explicit rounding; its copies are cached (bf16_cache.cc), so an
// operand used by several products (a layer's input, weight and output gradient) is rounded once.
// Float32 with a row-major, unbatched B (the backward data and weight gradients of a Linear layer): oneDNN's brgemm
// runs faster on a column-major B (the forward Linear layout), so such a B is first copied transposed where that
// pays (FlipB, TransposedProduct).
// Float32 Linear weights (B [N, K] row-major, unbatched) reused unchanged run pre-packed (packed_weights.cc).
#include <dnnl.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>
#include "common.h"
#include "packed_weights.h"
#include "signal_guard.h"

namespace dinots {
namespace {

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& Stream() {
  thread_local dnnl::stream s(Engine());
  return s;
}

// Activation codes shared with the TS side (src/backend/native/addon.ts).
enum Act { kNone = 0, kRelu = 1, kSigmoid = 2, kElu = 3, kGeluErf = 4, kLeakyRelu = 5, kRelu6 = 6 };

// bA, bB, batch, M, K, N, transA, transB, bias, act, alpha, bf16, packed B
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, float, bool, bool>;

thread_local bool g_bf16 = false;  // set by setMatmulPrecision (per JS thread, as all state here)

struct Prim {
  dnnl::matmul prim;
  dnnl::memory::desc src, wei, bias, dst;
  // bf16 only: the operands' bf16 layouts (the same strides as the f32 ones).
  dnnl::memory::desc srcLow, weiLow;
  // packed B only: the blocked layout the primitive chose for B (wei stays its plain layout, to reorder from).
  dnnl::memory::desc weiPacked;
};

// Scratch for small bf16 operands, grown on demand and reused by every call of this JS thread. All state of the
// addon is per JS thread (thread_local): data-parallel replicas in worker threads each have their own caches.
std::vector<uint16_t>& Scratch(int which) {
  thread_local std::vector<uint16_t> buf[2];
  return buf[which];
}

// Float32 scratch (a transposed operand, a transposed product), grown on demand and reused like the bf16 one.
std::vector<float>& F32Scratch(int which) {
  thread_local std::vector<float> buf[2];
  return buf[which];
}

// Whether to multiply by a transposed copy of B: f32, B row-major and unbatched, A tall (M >= 1024) and B of
// 512K-1M values. Measured in a ViT-S step, old and new path drawn at random per call: the fc1/fc2 data gradients
// (1576 x 1536 x 384, 1576 x 384 x 1536) 8-9% faster; no gain for M = 384, a 384 x 384 or 1152 x 384 B (the qkv
// data gradient was 9% slower); and a 2.4M-value B costs 5-7 ms to transpose, as much as it saves.
bool FlipB(bool transB, int64_t bB, int64_t M, int64_t K, int64_t N) {
  return !transB && bB == 1 && M >= 1024 && K * N >= (int64_t{1} << 19) && K * N <= (int64_t{1} << 20);
}

// Whether C = Aᵀ·B (B row-major and too big to flip, N wide) is better computed as (Bᵀ·A)ᵀ, whose A then flips:
// the weight gradient of a wide-input Linear layer (ViT-S fc2: 384 x 1576 x 1536, 8% faster in the same test).
bool TransposedProduct(bool transA, bool transB, int64_t bA, int64_t bB, int64_t M, int64_t K, int64_t N) {
  return transA && !transB && bA == 1 && bB == 1 && N >= 1024 && !FlipB(false, 1, M, K, N) && FlipB(false, 1, N, K, M);
}

// Copies the row-major rows x cols matrix `src` to `dst` transposed (dst is cols x rows, row-major).
void Transpose2d(const float* src, float* dst, int64_t rows, int64_t cols) {
  thread_local std::map<std::pair<int64_t, int64_t>, dnnl::reorder> cache;
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc rowMajor({rows, cols}, dt::f32, dnnl::memory::dims{cols, 1});
  dnnl::memory::desc colMajor({rows, cols}, dt::f32, dnnl::memory::dims{1, rows});
  auto key = std::make_pair(rows, cols);
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() > 1024) cache.clear();
    it = cache.emplace(key, dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), rowMajor, Engine(), colMajor))).first;
  }
  dnnl::memory from(rowMajor, Engine(), const_cast<float*>(src)), to(colMajor, Engine(), dst);
  it->second.execute(Stream(), from, to);
}

Prim& GetPrim(const Key& k) {
  thread_local std::map<Key, Prim> cache;
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  auto [bA, bB, batch, M, K, N, transA, transB, hasBias, act, alpha, bf16, packedB] = k;
  using dt = dnnl::memory::data_type;
  const dnnl::memory::dims srcStrides = transA ? dnnl::memory::dims{M * K, 1, M} : dnnl::memory::dims{M * K, K, 1};
  const dnnl::memory::dims weiStrides = transB ? dnnl::memory::dims{K * N, 1, K} : dnnl::memory::dims{K * N, N, 1};
  dnnl::memory::desc src({bA, M, K}, dt::f32, srcStrides);
  dnnl::memory::desc wei({bB, K, N}, dt::f32, weiStrides);
  dnnl::memory::desc dst({batch, M, N}, dt::f32, dnnl::memory::dims{M * N, N, 1});
  dnnl::memory::desc bias;
  if (hasBias) bias = dnnl::memory::desc({1, 1, N}, dt::f32, dnnl::memory::dims{N, N, 1});
  dnnl::primitive_attr attr;
  if (act != kNone) {
    dnnl::post_ops po;
    dnnl::algorithm alg = dnnl::algorithm::eltwise_relu;
    float a = 0.f, b = 0.f;
    switch (act) {
      case kRelu: alg = dnnl::algorithm::eltwise_relu; break;
      case kSigmoid: alg = dnnl::algorithm::eltwise_logistic; break;
      case kElu: alg = dnnl::algorithm::eltwise_elu; a = 1.f; break;
      case kGeluErf: alg = dnnl::algorithm::eltwise_gelu_erf; break;
      case kLeakyRelu: alg = dnnl::algorithm::eltwise_relu; a = alpha; break;
      case kRelu6: alg = dnnl::algorithm::eltwise_clip; a = 0.f; b = 6.f; break;
      default: break;
    }
    po.append_eltwise(1.f, alg, a, b);
    attr.set_post_ops(po);
  }
  if (cache.size() > 4096) cache.clear();  // shapes vary with image size; keep the cache bounded
  if (!bf16) {
    const dnnl::memory::desc weiAny({bB, K, N}, dt::f32, dnnl::memory::format_tag::any);
    auto d = hasBias ? dnnl::matmul::desc(src, packedB ? weiAny : wei, bias, dst)
                     : dnnl::matmul::desc(src, packedB ? weiAny : wei, dst);
    dnnl::matmul::primitive_desc pd(d, attr, Engine());
    Prim p{dnnl::matmul(pd), src, wei, bias, dst, {}, {}, packedB ? pd.weights_desc() : dnnl::memory::desc()};
    return cache.emplace(k, std::move(p)).first->second;
  }
  dnnl::memory::desc srcLow({bA, M, K}, dt::bf16, srcStrides), weiLow({bB, K, N}, dt::bf16, weiStrides);
  auto d = hasBias ? dnnl::matmul::desc(srcLow, weiLow, bias, dst) : dnnl::matmul::desc(srcLow, weiLow, dst);
  dnnl::matmul::primitive_desc pd(d, attr, Engine());
  return cache.emplace(k, Prim{dnnl::matmul(pd), src, wei, bias, dst, srcLow, weiLow, {}}).first->second;
}

// out = op(a)·op(b) (+ bias, activation) for validated shapes; see Matmul below. `owners` are the JS arrays of a and b
// and `cacheMask` says which of them the bf16 and packed-weight caches may keep (read only where a and b are the
// caller's own arrays).
void Multiply(const float* a, int64_t aSize, const float* b, int64_t bSize, float* out, int64_t bA, int64_t bB, int64_t M,
              int64_t K, int64_t N, bool transA, bool transB, const float* bias, int act, float alpha,
              const Napi::Value* owners, int cacheMask) {
  if (!g_bf16 && !bias && act == kNone && TransposedProduct(transA, transB, bA, bB, M, K, N)) {
    auto& productT = F32Scratch(1);
    if (productT.size() < static_cast<size_t>(M * N)) productT.resize(M * N);
    // Cᵀ [N, M] = Bᵀ·A: B [K, N] is read transposed, A [K, M] is row-major (and flips).
    Multiply(b, bSize, a, aSize, productT.data(), 1, 1, N, K, M, true, false, nullptr, kNone, 0.f, nullptr, 0);
    Transpose2d(productT.data(), out, N, M);
    Stream().wait();
    return;
  }
  auto& eng = Engine();
  const float* bData = b;
  if (!g_bf16 && FlipB(transB, bB, M, K, N)) {
    auto& flipped = F32Scratch(0);
    if (flipped.size() < static_cast<size_t>(bSize)) flipped.resize(bSize);
    Transpose2d(b, flipped.data(), K, N);
    bData = flipped.data();
    transB = true;
  }
  int64_t batch = bA > bB ? bA : bB;
  const dnnl::memory* packed = nullptr;
  Prim* pp = nullptr;
  if (!g_bf16 && transB && bData == b && bB == 1 && (cacheMask & 2)) {
    pp = &GetPrim(Key{bA, bB, batch, M, K, N, transA, transB, bias != nullptr, act, alpha, false, true});
    packed = PackedWeights(owners[1], b, bSize, pp->wei, pp->weiPacked, eng, Stream());
  }
  Prim& p = packed ? *pp : GetPrim(Key{bA, bB, batch, M, K, N, transA, transB, bias != nullptr, act, alpha, g_bf16, false});
  dnnl::memory ms(p.src, eng, const_cast<float*>(a)), mw = packed ? *packed : dnnl::memory(p.wei, eng, const_cast<float*>(bData));
  dnnl::memory md(p.dst, eng, out);
  if (g_bf16) {
    BeginBf16Call();
    const uint16_t* lowA = Bf16Copy(owners[0], cacheMask & 1, a, aSize, Scratch(0));
    const uint16_t* lowB = Bf16Copy(owners[1], cacheMask & 2, b, bSize, Scratch(1));
    ms = dnnl::memory(p.srcLow, eng, const_cast<uint16_t*>(lowA));
    mw = dnnl::memory(p.weiLow, eng, const_cast<uint16_t*>(lowB));
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, eng, const_cast<float*>(bias)));
  p.prim.execute(Stream(), args);
  Stream().wait();
}

// matmul(a, b, out, batchA, batchB, M, K, N, transA, transB, bias|null, act, alpha[, cacheMask])
// a: [batchA, M, K] ([batchA, K, M] if transA); b: [batchB, K, N] ([batchB, N, K] if transB);
// out: [max(batchA, batchB), M, N]. A batch of 1 broadcasts.
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  F32 a = f32(info, 0), b = f32(info, 1), out = f32(info, 2);
  int64_t bA = i64(info, 3), bB = i64(info, 4), M = i64(info, 5), K = i64(info, 6), N = i64(info, 7);
  bool transA = info[8].ToBoolean(), transB = info[9].ToBoolean();
  bool hasBias = !info[10].IsNull() && !info[10].IsUndefined();
  int act = static_cast<int>(i64(info, 11));
  float alpha = static_cast<float>(f64(info, 12));
  int64_t batch = bA > bB ? bA : bB;
  require(info, (bA == batch || bA == 1) && (bB == batch || bB == 1), "matmul: batch dims must match or be 1");
  require(info, a.size == bA * M * K && b.size == bB * K * N && out.size == batch * M * N, "matmul: buffer sizes do not match the shapes");
  if (M == 0 || N == 0 || batch == 0) return info.Env().Undefined();
  if (K == 0) {
    for (int64_t i = 0; i < out.size; ++i) out.data[i] = 0.f;
    return info.Env().Undefined();
  }
  F32 bias{nullptr, 0};
  if (hasBias) {
    bias = f32(info, 10);
    require(info, bias.size == N, "matmul: bias must have N elements");
  }
  const Napi::Value owners[2] = {info[0], info[1]};
  const int cacheMask = info.Length() > 13 && info[13].IsNumber() ? static_cast<int>(i64(info, 13)) : 0;
  SignalGuard noSignals;
  Multiply(a.data, a.size, b.data, b.size, out.data, bA, bB, M, K, N, transA, transB, bias.data, act, alpha, owners,
           cacheMask);
  return info.Env().Undefined();
}

// setMatmulPrecision('f32' | 'bf16'): the precision of every later matmul. bf16 needs a CPU with AVX512-BF16 or AMX
// to be fast (oneDNN emulates it, slowly, on other AVX-512 CPUs and has no bf16 matmul below AVX-512).
Napi::Value SetMatmulPrecision(const Napi::CallbackInfo& info) {
  std::string mode = info[0].As<Napi::String>().Utf8Value();
  require(info, mode == "f32" || mode == "bf16", "setMatmulPrecision: use 'f32' or 'bf16'");
  if (mode == "bf16") {
    try {  // fail now, with a clear message, rather than at the first matmul
      GetPrim(Key{1, 1, 1, 16, 16, 16, false, false, false, kNone, 0.f, true, false});
    } catch (const dnnl::error& e) {
      throw Napi::Error::New(info.Env(), std::string("bf16 matmul is not available on this CPU (oneDNN: ") + e.what() +
                                             "); use precision f32");
    }
  }
  g_bf16 = mode == "bf16";
  ClearBf16();  // buffers written while bf16 was off never told the cache
  return info.Env().Undefined();
}

// The instruction set oneDNN dispatches to on this CPU, e.g. "avx512_core_amx" (bf16 matmul on AMX tiles).
Napi::Value CpuIsa(const Napi::CallbackInfo& info) {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: return Napi::String::New(info.Env(), "avx512_core_amx");
    case dnnl::cpu_isa::avx512_core_bf16: return Napi::String::New(info.Env(), "avx512_core_bf16");
    case dnnl::cpu_isa::avx512_core_vnni: return Napi::String::New(info.Env(), "avx512_core_vnni");
    case dnnl::cpu_isa::avx512_core: return Napi::String::New(info.Env(), "avx512_core");
    case dnnl::cpu_isa::avx2: return Napi::String::New(info.Env(), "avx2");
    default: return Napi::String::New(info.Env(), "other");
  }
}

}  // namespace

void InitMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("setMatmulPrecision", Napi::Function::New(env, SetMatmulPrecision));
  exports.Set("cpuIsa", Napi::Function::New(env, CpuIsa));
}

}  // namespace dinots
