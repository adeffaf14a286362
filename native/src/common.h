// Shared helpers for the dinots native kernels: argument unpacking and the threading threshold.
#pragma once
#include <napi.h>
#include <cstdint>
#include <vector>

namespace dinots {

// Loops shorter than this run on one thread: spawning an OpenMP team costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

struct F32 {
  float* data;
  int64_t size;
};

inline F32 f32(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Float32Array");
  auto ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Float32Array");
  auto fa = info[i].As<Napi::Float32Array>();
  return {fa.Data(), static_cast<int64_t>(fa.ElementLength())};
}

inline int64_t i64(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
inline double f64(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }

inline std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out[k] = arr.Get(k).As<Napi::Number>().Int64Value();
  return out;
}

inline void require(const Napi::CallbackInfo& info, bool ok, const char* msg) {
  if (!ok) throw Napi::RangeError::New(info.Env(), msg);
}

// bf16 copies of float32 buffers for the bf16 matmuls (bf16_cache.cc). Bf16Copy returns `n` rounded values of `data`
// (whose ArrayBuffer `owner` holds): cached when `cacheable`, else (or when small) in `scratch`; valid until the
// next matmul.
void BeginBf16Call();
const uint16_t* Bf16Copy(const Napi::Value& owner, bool cacheable, const float* data, int64_t n,
                         std::vector<uint16_t>& scratch);
// The buffer at [data, data + n) is about to change: drop its cached bf16 copies.
void ForgetBf16(const float* data, int64_t n);
void ClearBf16();
// The same for its pre-packed copies (packed_weights.cc).
void ForgetPacked(const float* data, int64_t n);
void ClearPacked();
// Both of the above: every cached form of the buffer (addon.cc).
void ForgetCached(const float* data, int64_t n);

// Each kernel file registers its functions here.
void InitMatmul(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitReduce(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);
void InitNnOps(Napi::Env env, Napi::Object exports);
void InitAdamw(Napi::Env env, Napi::Object exports);
void InitBf16Cache(Napi::Env env, Napi::Object exports);
void InitPackedWeights(Napi::Env env, Napi::Object exports);
void InitAttention(Napi::Env env, Napi::Object exports);

}  // namespace dinots
