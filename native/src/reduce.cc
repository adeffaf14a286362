// Reductions over the middle dim of a [outer, R, inner] view (the TS side maps any axis set onto it,
// transposing first when the axes are not contiguous).
#include <omp.h>
#include <cmath>
#include <limits>
#include "common.h"

namespace dinots {
namespace {

enum RedOp { kSum = 0, kMean, kMax, kMin, kProd };

template <int OP>
inline float Init() {
  if constexpr (OP == kMax) return -std::numeric_limits<float>::infinity();
  if constexpr (OP == kMin) return std::numeric_limits<float>::infinity();
  if constexpr (OP == kProd) return 1.f;
  return 0.f;
}

template <int OP>
inline float Combine(float acc, float v) {
  if constexpr (OP == kMax) return (v > acc || v != v) ? v : acc;
  if constexpr (OP == kMin) return (v < acc || v != v) ? v : acc;
  if constexpr (OP == kProd) return acc * v;
  return acc + v;
}

template <int OP>
inline float ReduceRow(const float* x, int64_t n) {
  if constexpr (OP == kSum || OP == kMean) {
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += x[i];
    return acc;
  } else {
    float acc = Init<OP>();
    for (int64_t i = 0; i < n; ++i) acc = Combine<OP>(acc, x[i]);
    return acc;
  }
}

template <int OP>
void Run(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  const int64_t total = outer * R * inner;
  const float scale = OP == kMean ? 1.f / static_cast<float>(R) : 1.f;
  if (inner == 1 && outer < omp_get_max_threads() && total >= kParallelMin && (OP == kSum || OP == kMean)) {
    // Few long rows: split each row across the threads.
    for (int64_t o = 0; o < outer; ++o) {
      const float* row = x + o * R;
      double acc = 0.0;
#pragma omp parallel for reduction(+ : acc) schedule(static)
      for (int64_t c = 0; c < R; c += 8192) acc += ReduceRow<OP>(row + c, R - c < 8192 ? R - c : 8192);
      y[o] = static_cast<float>(acc) * scale;
    }
    return;
  }
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
    for (int64_t o = 0; o < outer; ++o) y[o] = ReduceRow<OP>(x + o * R, R) * scale;
    return;
  }
  // Column reduction: accumulate whole rows of `inner` values, split into chunks for the threads.
  const int64_t chunk = 1024;
  const int64_t nChunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for collapse(2) schedule(static) if (total >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < nChunks; ++c) {
      const int64_t begin = c * chunk, len = inner - begin < chunk ? inner - begin : chunk;
      float* acc = y + o * inner + begin;
      for (int64_t j = 0; j < len; ++j) acc[j] = Init<OP>();
      for (int64_t r = 0; r < R; ++r) {
        const float* src = x + (o * R + r) * inner + begin;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) acc[j] = Combine<OP>(acc[j], src[j]);
      }
      if (OP == kMean)
        for (int64_t j = 0; j < len; ++j) acc[j] *= scale;
    }
  }
}

// reduce(op, x, outer, R, inner, out)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  int op = static_cast<int>(i64(info, 0));
  F32 x = f32(info, 1), y = f32(info, 5);
  int64_t outer = i64(info, 2), R = i64(info, 3), inner = i64(info, 4);
  require(info, x.size == outer * R * inner && y.size == outer * inner, "reduce: buffer sizes do not match the shapes");
  switch (op) {
    case kSum: Run<kSum>(x.data, y.data, outer, R, inner); break;
    case kMean: Run<kMean>(x.data, y.data, outer, R, inner); break;
    case kMax: Run<kMax>(x.data, y.data, outer, R, inner); break;
    case kMin: Run<kMin>(x.data, y.data, outer, R, inner); break;
    case kProd: Run<kProd>(x.data, y.data, outer, R, inner); break;
    default: throw Napi::RangeError::New(info.Env(), "reduce: unknown op code");
  }
  return info.Env().Undefined();
}

}  // namespace

void InitReduce(Napi::Env env, Napi::Object exports) { exports.Set("reduce", Napi::Function::New(env, Reduce)); }

}  // namespace dinots
