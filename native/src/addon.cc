// Entry point of the dinots native addon: thread control plus every kernel group.
#include <omp.h>
#include <cstdlib>
#include "common.h"
#include "signal_guard.h"

namespace dinots {

void BlockSignalsInWorkers() {
#pragma omp parallel
  if (omp_get_thread_num() != 0) pthread_sigmask(SIG_BLOCK, &AsyncSignals(), nullptr);
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  omp_set_num_threads(static_cast<int>(i64(info, 0)));
  BlockSignalsInWorkers();  // new workers start with the caller's mask
  return info.Env().Undefined();
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

void ForgetCached(const float* data, int64_t n) {
  ForgetBf16(data, n);
  ForgetPacked(data, n);
}

// forgetCached(buffer): the buffer leaves the backend's sole control (released to the pool or escaped to user code),
// so matmuls must drop what they derived from it (bf16 copies, packed weights).
static Napi::Value ForgetCachedJs(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0);
  ForgetCached(x.data, x.size);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // All cores unless DINOTS_NUM_THREADS says otherwise (OMP_NUM_THREADS is ignored on purpose: one knob).
  int threads = omp_get_num_procs();
  if (const char* s = std::getenv("DINOTS_NUM_THREADS")) {
    int n = std::atoi(s);
    if (n > 0) threads = n;
  }
  omp_set_num_threads(threads);
  BlockSignalsInWorkers();
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("forgetCached", Napi::Function::New(env, ForgetCachedJs));
  InitMatmul(env, exports);
  InitElementwise(env, exports);
  InitReduce(env, exports);
  InitLayout(env, exports);
  InitNnOps(env, exports);
  InitAdamw(env, exports);
  InitBf16Cache(env, exports);
  InitPackedWeights(env, exports);
  InitAttention(env, exports);
  return exports;
}

}  // namespace dinots

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dinots::Init(env, exports); }

NODE_API_MODULE(dinots_native, InitAddon)
