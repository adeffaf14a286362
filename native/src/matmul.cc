// Matmul over oneDNN: batched, with transposes expressed as strides (no copies), batch broadcasting of one side,
// and an optional fused bias + activation. Primitives are cached by shape so repeated calls skip creation.
#include <dnnl.hpp>
#include <map>
#include <tuple>
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

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, float>;

struct Prim {
  dnnl::matmul prim;
  dnnl::memory::desc src, wei, bias, dst;
};

Prim& GetPrim(const Key& k) {
  static std::map<Key, Prim> cache;
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  auto [bA, bB, batch, M, K, N, transA, transB, hasBias, act, alpha] = k;
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc src({bA, M, K}, dt::f32, transA ? dnnl::memory::dims{M * K, 1, M} : dnnl::memory::dims{M * K, K, 1});
  dnnl::memory::desc wei({bB, K, N}, dt::f32, transB ? dnnl::memory::dims{K * N, 1, K} : dnnl::memory::dims{K * N, N, 1});
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
  auto d = hasBias ? dnnl::matmul::desc(src, wei, bias, dst) : dnnl::matmul::desc(src, wei, dst);
  dnnl::matmul::primitive_desc pd(d, attr, Engine());
  if (cache.size() > 4096) cache.clear();  // shapes vary with image size; keep the cache bounded
  return cache.emplace(k, Prim{dnnl::matmul(pd), src, wei, bias, dst}).first->second;
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
  Prim& p = GetPrim(Key{bA, bB, batch, M, K, N, transA, transB, hasBias, act, alpha});
  auto& eng = Engine();
  dnnl::memory ms(p.src, eng, a.data), mw(p.wei, eng, b.data), md(p.dst, eng, out.data);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, eng, bias.data));
  p.prim.execute(Stream(), args);
  Stream().wait();
  return info.Env().Undefined();
}

}  // namespace

void InitMatmul(Napi::Env env, Napi::Object exports) { exports.Set("matmul", Napi::Function::New(env, Matmul)); }

}  // namespace dinots
