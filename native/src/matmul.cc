// Matmul over oneDNN: batched, with transposes expressed as strides (no copies), batch broadcasting of one side,
// and an optional fused bias + activation. Primitives are cached by shape so repeated calls skip creation.
// Precision bf16 (opt-in mixed precision): both operands are rounded to bfloat16 (a reorder into scratch buffers,
// O(MK + KN)) and multiplied with float32 accumulation and output, which runs on AMX / AVX512-BF16 where the CPU has
// them. oneDNN 2.6 ignores the fpmath_mode attribute for f32 matmul, hence the explicit conversion.
#include <dnnl.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>
#include "common.h"

namespace dinots {
namespace {

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& Stream() {
  static dnnl::stream s(Engine());
  return s;
}

// Activation codes shared with the TS side (src/backend/native/addon.ts).
enum Act { kNone = 0, kRelu = 1, kSigmoid = 2, kElu = 3, kGeluErf = 4, kLeakyRelu = 5, kRelu6 = 6 };

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, float, bool>;

bool g_bf16 = false;  // set by setMatmulPrecision

struct Prim {
  dnnl::matmul prim;
  dnnl::memory::desc src, wei, bias, dst;
  // bf16 only: the operands' bf16 layouts and the f32 -> bf16 conversions into them.
  dnnl::memory::desc srcLow, weiLow;
  dnnl::reorder toLowSrc, toLowWei;
};

// Scratch for the bf16 operands, grown on demand and reused by every call (calls are serialised by the JS thread).
std::vector<uint16_t>& Scratch(int which) {
  static std::vector<uint16_t> buf[2];
  return buf[which];
}

Prim& GetPrim(const Key& k) {
  static std::map<Key, Prim> cache;
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  auto [bA, bB, batch, M, K, N, transA, transB, hasBias, act, alpha, bf16] = k;
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
    auto d = hasBias ? dnnl::matmul::desc(src, wei, bias, dst) : dnnl::matmul::desc(src, wei, dst);
    dnnl::matmul::primitive_desc pd(d, attr, Engine());
    return cache.emplace(k, Prim{dnnl::matmul(pd), src, wei, bias, dst, {}, {}, {}, {}}).first->second;
  }
  dnnl::memory::desc srcLow({bA, M, K}, dt::bf16, srcStrides), weiLow({bB, K, N}, dt::bf16, weiStrides);
  auto d = hasBias ? dnnl::matmul::desc(srcLow, weiLow, bias, dst) : dnnl::matmul::desc(srcLow, weiLow, dst);
  dnnl::matmul::primitive_desc pd(d, attr, Engine());
  dnnl::reorder toLowSrc(dnnl::reorder::primitive_desc(Engine(), src, Engine(), srcLow));
  dnnl::reorder toLowWei(dnnl::reorder::primitive_desc(Engine(), wei, Engine(), weiLow));
  return cache.emplace(k, Prim{dnnl::matmul(pd), src, wei, bias, dst, srcLow, weiLow, toLowSrc, toLowWei}).first->second;
}

// matmul(a, b, out, batchA, batchB, M, K, N, transA, transB, bias|null, act, alpha)
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
  Prim& p = GetPrim(Key{bA, bB, batch, M, K, N, transA, transB, hasBias, act, alpha, g_bf16});
  auto& eng = Engine();
  dnnl::memory ms(p.src, eng, a.data), mw(p.wei, eng, b.data), md(p.dst, eng, out.data);
  if (g_bf16) {
    auto& sa = Scratch(0);
    auto& sb = Scratch(1);
    if (sa.size() < static_cast<size_t>(a.size)) sa.resize(a.size);
    if (sb.size() < static_cast<size_t>(b.size)) sb.resize(b.size);
    dnnl::memory lowA(p.srcLow, eng, sa.data()), lowB(p.weiLow, eng, sb.data());
    p.toLowSrc.execute(Stream(), ms, lowA);
    p.toLowWei.execute(Stream(), mw, lowB);
    ms = lowA;
    mw = lowB;
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, eng, bias.data));
  p.prim.execute(Stream(), args);
  Stream().wait();
  return info.Env().Undefined();
}

// setMatmulPrecision('f32' | 'bf16'): the precision of every later matmul. bf16 needs a CPU with AVX512-BF16 or AMX
// to be fast (oneDNN emulates it, slowly, on other AVX-512 CPUs and has no bf16 matmul below AVX-512).
Napi::Value SetMatmulPrecision(const Napi::CallbackInfo& info) {
  std::string mode = info[0].As<Napi::String>().Utf8Value();
  require(info, mode == "f32" || mode == "bf16", "setMatmulPrecision: use 'f32' or 'bf16'");
  if (mode == "bf16") {
    try {  // fail now, with a clear message, rather than at the first matmul
      GetPrim(Key{1, 1, 1, 16, 16, 16, false, false, false, kNone, 0.f, true});
    } catch (const dnnl::error& e) {
      throw Napi::Error::New(info.Env(), std::string("bf16 matmul is not available on this CPU (oneDNN: ") + e.what() +
                                             "); use precision f32");
    }
  }
  g_bf16 = mode == "bf16";
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
