// One row of the scaled softmax and of its gradient, shared by the softmax kernels (nn_ops.cc) and the attention
// kernels (attention.cc). Either may run in place (y == x, dx == dy).
#pragma once
#include <cmath>
#include <cstdint>
#include "vmath.h"

namespace dinots {

// y = softmax(scale * x) over cols values.
inline void SoftmaxRow(const float* x, float* y, int64_t cols, float scale) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t c = 0; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) {
    const float e = std::exp((x[c] - mx) * scale);
    y[c] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] *= inv;
}

// dx = scale * y * (dy - sum(dy * y)) over cols values, y being SoftmaxRow's output.
inline void SoftmaxGradRow(const float* y, const float* dy, float* dx, int64_t cols, float scale) {
  float dot = 0.f;
#pragma omp simd reduction(+ : dot)
  for (int64_t c = 0; c < cols; ++c) dot += y[c] * dy[c];
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) dx[c] = scale * y[c] * (dy[c] - dot);
}

}  // namespace dinots
