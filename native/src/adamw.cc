// Fused AdamW (PyTorch semantics, decoupled weight decay) in place on the parameter and moment buffers:
// one pass instead of ~10 TF.js ops and their temporaries per parameter.
#include <omp.h>
#include <cmath>
#include "common.h"

namespace dinots {
namespace {

// adamw(param, grad, m, v, lr, wd, beta1, beta2, eps, step, gradScale)
Napi::Value Adamw(const Napi::CallbackInfo& info) {
  F32 p = f32(info, 0), g = f32(info, 1), m = f32(info, 2), v = f32(info, 3);
  const float lr = static_cast<float>(f64(info, 4)), wd = static_cast<float>(f64(info, 5));
  const float b1 = static_cast<float>(f64(info, 6)), b2 = static_cast<float>(f64(info, 7));
  const float eps = static_cast<float>(f64(info, 8));
  const double step = f64(info, 9);
  const float gs = info.Length() > 10 ? static_cast<float>(f64(info, 10)) : 1.f;
  require(info, g.size == p.size && m.size == p.size && v.size == p.size, "adamw: buffer sizes differ");
  require(info, step >= 1, "adamw: step counts from 1");
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), step));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), step));
  ForgetCached(p.data, p.size);  // written in place below: copies a matmul derived from it (bf16, packed) are stale
  const float stepSize = lr / bc1, decay = 1.f - lr * wd, invSqrtBc2 = 1.f / std::sqrt(bc2);
#pragma omp parallel for simd schedule(static) if (p.size >= kParallelMin)
  for (int64_t i = 0; i < p.size; ++i) {
    const float gi = g.data[i] * gs;
    const float mi = b1 * m.data[i] + (1.f - b1) * gi;
    const float vi = b2 * v.data[i] + (1.f - b2) * gi * gi;
    m.data[i] = mi;
    v.data[i] = vi;
    p.data[i] = p.data[i] * decay - stepSize * mi / (std::sqrt(vi) * invSqrtBc2 + eps);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitAdamw(Napi::Env env, Napi::Object exports) { exports.Set("adamw", Napi::Function::New(env, Adamw)); }

}  // namespace dinots
