// Fused neural-net kernels: softmax (last axis) and its gradient, LayerNorm forward/backward, GELU (erf) forward/backward.
// Each replaces a chain of 5-30 TF.js ops (and as many temporary tensors) with one pass over the rows.
#include <omp.h>
#include <cmath>
#include "vmath.h"
#include <vector>
#include "common.h"
#include "softmax_rows.h"

namespace dinots {
namespace {

// softmax(x, rows, cols, y, scale): y = softmax(scale * x) over the last axis.
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), y = f32(info, 3);
  int64_t rows = i64(info, 1), cols = i64(info, 2);
  float scale = static_cast<float>(f64(info, 4));
  require(info, x.size == rows * cols && y.size == x.size, "softmax: buffer sizes do not match");
#pragma omp parallel for schedule(static) if (x.size >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) SoftmaxRow(x.data + r * cols, y.data + r * cols, cols, scale);
  return info.Env().Undefined();
}

// softmaxGrad(y, dy, rows, cols, dx, scale): dx = scale * y * (dy - sum(dy * y)).
Napi::Value SoftmaxGrad(const Napi::CallbackInfo& info) {
  F32 y = f32(info, 0), dy = f32(info, 1), dx = f32(info, 4);
  int64_t rows = i64(info, 2), cols = i64(info, 3);
  float scale = static_cast<float>(f64(info, 5));
  require(info, y.size == rows * cols && dy.size == y.size && dx.size == y.size, "softmaxGrad: buffer sizes do not match");
#pragma omp parallel for schedule(static) if (y.size >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) SoftmaxGradRow(y.data + r * cols, dy.data + r * cols, dx.data + r * cols, cols, scale);
  return info.Env().Undefined();
}

// layerNorm(x, gamma, beta, rows, cols, eps, y, mean, rstd)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), g = f32(info, 1), b = f32(info, 2), y = f32(info, 6), mean = f32(info, 7), rstd = f32(info, 8);
  int64_t rows = i64(info, 3), cols = i64(info, 4);
  float eps = static_cast<float>(f64(info, 5));
  require(info, x.size == rows * cols && y.size == x.size && g.size == cols && b.size == cols && mean.size == rows &&
                    rstd.size == rows, "layerNorm: buffer sizes do not match");
#pragma omp parallel for schedule(static) if (x.size >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data + r * cols;
    float* yr = y.data + r * cols;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < cols; ++c) s += xr[c];
    const float mu = s / cols;
    float v = 0.f;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < cols; ++c) v += (xr[c] - mu) * (xr[c] - mu);
    const float rs = 1.f / std::sqrt(v / cols + eps);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * g.data[c] + b.data[c];
    mean.data[r] = mu;
    rstd.data[r] = rs;
  }
  return info.Env().Undefined();
}

// layerNormGrad(x, gamma, mean, rstd, dy, rows, cols, dx, dgamma, dbeta)
Napi::Value LayerNormGrad(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), g = f32(info, 1), mean = f32(info, 2), rstd = f32(info, 3), dy = f32(info, 4);
  int64_t rows = i64(info, 5), cols = i64(info, 6);
  F32 dx = f32(info, 7), dg = f32(info, 8), db = f32(info, 9);
  require(info, x.size == rows * cols && dy.size == x.size && dx.size == x.size && g.size == cols && dg.size == cols &&
                    db.size == cols && mean.size == rows && rstd.size == rows, "layerNormGrad: buffer sizes do not match");
  const int nt = x.size >= kParallelMin ? omp_get_max_threads() : 1;
  // Per-thread partial sums of dgamma/dbeta, added up at the end.
  std::vector<float> partial(static_cast<size_t>(nt) * 2 * cols, 0.f);
#pragma omp parallel num_threads(nt)
  {
    float* pg = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * cols;
    float* pb = pg + cols;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data + r * cols;
      const float* gr = dy.data + r * cols;
      float* out = dx.data + r * cols;
      const float mu = mean.data[r], rs = rstd.data[r];
      float sg = 0.f, sgx = 0.f;
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t c = 0; c < cols; ++c) {
        const float xh = (xr[c] - mu) * rs, gg = gr[c] * g.data[c];
        sg += gg;
        sgx += gg * xh;
        pg[c] += gr[c] * xh;
        pb[c] += gr[c];
      }
      const float mg = sg / cols, mgx = sgx / cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        const float xh = (xr[c] - mu) * rs;
        out[c] = rs * (gr[c] * g.data[c] - mg - xh * mgx);
      }
    }
  }
  for (int64_t c = 0; c < cols; ++c) {
    float sg = 0.f, sb = 0.f;
    for (int t = 0; t < nt; ++t) {
      sg += partial[static_cast<size_t>(t) * 2 * cols + c];
      sb += partial[static_cast<size_t>(t) * 2 * cols + cols + c];
    }
    dg.data[c] = sg;
    db.data[c] = sb;
  }
  return info.Env().Undefined();
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// gelu(x, y): y = x * Phi(x) with the exact (erf) normal CDF, as torch.nn.GELU().
Napi::Value Gelu(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), y = f32(info, 1);
  require(info, x.size == y.size, "gelu: sizes differ");
#pragma omp parallel for simd schedule(static) if (x.size >= kParallelMin)
  for (int64_t i = 0; i < x.size; ++i) {
    const float v = x.data[i];
    y.data[i] = 0.5f * v * (1.f + std::erf(v * kInvSqrt2));
  }
  return info.Env().Undefined();
}

// geluGrad(x, dy, dx): dx = dy * (Phi(x) + x * phi(x)).
Napi::Value GeluGrad(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), dy = f32(info, 1), dx = f32(info, 2);
  require(info, x.size == dy.size && x.size == dx.size, "geluGrad: sizes differ");
#pragma omp parallel for simd schedule(static) if (x.size >= kParallelMin)
  for (int64_t i = 0; i < x.size; ++i) {
    const float v = x.data[i];
    const float cdf = 0.5f * (1.f + std::erf(v * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
    dx.data[i] = dy.data[i] * (cdf + v * pdf);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitNnOps(Napi::Env env, Napi::Object exports) {
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("softmaxGrad", Napi::Function::New(env, SoftmaxGrad));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGrad));
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
}

}  // namespace dinots
