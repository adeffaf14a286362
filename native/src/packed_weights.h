// Pre-packed float32 Linear weights (packed_weights.cc).
#pragma once
#include <dnnl.hpp>
#include "common.h"

namespace dinots {

// The `n` float32 weights at `data` (layout `plain`; `owner` holds their ArrayBuffer) reordered into `want`, the
// layout a matmul primitive chose for them; nullptr while they are not packed (first use, small, over the budget).
// Valid until the next call.
const dnnl::memory* PackedWeights(const Napi::Value& owner, const float* data, int64_t n, const dnnl::memory::desc& plain,
                                  const dnnl::memory::desc& want, const dnnl::engine& eng, const dnnl::stream& stream);

}  // namespace dinots
