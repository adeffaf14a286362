// bf16 copies of float32 matmul operands, for the opt-in bf16 precision. A Linear layer's input and weight are
// rounded in the forward pass and needed again by the two backward products (and the output gradient by both of
// them), so each buffer is rounded once and its copy reused while the buffer is unchanged.
//
// An entry is keyed by the float32 data pointer and length. It keeps the float32 ArrayBuffer alive, so no other
// array can get its address, and it is dropped whenever the buffer may be written: when the buffer pool gets the
// buffer back or it escapes to user code (forgetCached, from buffer_pool.ts) and when AdamW updates a parameter in
// place (ForgetCached). Only buffers of the pool that never escaped to user code are cached (the caller says so per
// operand), and for those these are the only writes: every kernel writes into an output it has just allocated. The
// cache is bounded (DINOTS_BF16_CACHE_MB, default 512) and evicts the least recently used entries.
#include <omp.h>
#include <cstring>
#include <map>
#include <memory>
#include "common.h"
#include "operand_cache.h"

namespace dinots {
namespace {

// Operands smaller than this are rounded into scratch every time: cheap, and not worth an entry.
constexpr int64_t kCacheMin = 1 << 16;

struct Entry {
  int64_t size;
  std::unique_ptr<uint16_t[]> data;
  Napi::Reference<Napi::ArrayBuffer> keep;
  uint64_t used;
};

// Storage of dropped entries by length, for the next entry of that length: a step drops and re-creates entries of
// the same few sizes, and fresh multi-MB allocations cost page faults (as much as the rounding they would save).
std::multimap<int64_t, std::unique_ptr<uint16_t[]>>& Spare() {
  thread_local std::multimap<int64_t, std::unique_ptr<uint16_t[]>> spare;
  return spare;
}
thread_local int64_t g_spareBytes = 0;

std::unique_ptr<uint16_t[]> Storage(int64_t n) {
  auto& spare = Spare();
  auto it = spare.find(n);
  if (it == spare.end()) return std::unique_ptr<uint16_t[]>(new uint16_t[n]);
  auto data = std::move(it->second);
  spare.erase(it);
  g_spareBytes -= n * 2;
  return data;
}

std::map<const float*, Entry>& Entries() {
  thread_local std::map<const float*, Entry> entries;
  return entries;
}
thread_local int64_t g_bytes = 0, g_largest = 0;
thread_local uint64_t g_tick = 0;

thread_local int64_t g_maxBytes = -1;  // -1: not read yet

int64_t MaxBytes() {
  if (g_maxBytes < 0) g_maxBytes = BudgetFromEnv("DINOTS_BF16_CACHE_MB", 512.0);
  return g_maxBytes;
}

// Round to nearest even, as the CPU's vcvtneps2bf16 (and oneDNN's reorder) do; NaNs stay NaN.
void ToBf16(const float* src, uint16_t* dst, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, 4);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    dst[i] = static_cast<uint16_t>(nan ? (u >> 16) | 0x40u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
}

void Drop(std::map<const float*, Entry>::iterator it) {
  const int64_t n = it->second.size;
  g_bytes -= n * 2;
  if (g_bytes + g_spareBytes + n * 2 <= MaxBytes()) {  // entries and spares together stay within the budget
    Spare().emplace(n, std::move(it->second.data));
    g_spareBytes += n * 2;
  }
  Entries().erase(it);
}

// Evicts least recently used entries, never one used by the current matmul, until `bytes` more fit (spares first).
void MakeRoom(int64_t bytes) {
  auto& entries = Entries();
  auto& spare = Spare();
  while (g_bytes + g_spareBytes + bytes > MaxBytes() && !spare.empty()) {
    g_spareBytes -= spare.begin()->first * 2;
    spare.erase(spare.begin());
  }
  while (g_bytes + bytes > MaxBytes() && !entries.empty()) {
    auto oldest = entries.end();
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (it->second.used != g_tick && (oldest == entries.end() || it->second.used < oldest->second.used)) oldest = it;
    }
    if (oldest == entries.end()) return;
    Drop(oldest);
  }
}

}  // namespace

void BeginBf16Call() { ++g_tick; }

const uint16_t* Bf16Copy(const Napi::Value& owner, bool cacheable, const float* data, int64_t n,
                         std::vector<uint16_t>& scratch) {
  if (cacheable && n >= kCacheMin && n * 2 <= MaxBytes()) {
    auto& entries = Entries();
    auto it = entries.find(data);
    if (it != entries.end() && it->second.size == n) {
      it->second.used = g_tick;
      return it->second.data.get();
    }
    if (it != entries.end()) Drop(it);
    MakeRoom(n * 2);
    if (g_bytes + n * 2 <= MaxBytes()) {
      Entry e{n, Storage(n), Napi::Persistent(owner.As<Napi::TypedArray>().ArrayBuffer()), g_tick};
      ToBf16(data, e.data.get(), n);
      g_bytes += n * 2;
      if (n > g_largest) g_largest = n;
      return entries.emplace(data, std::move(e)).first->second.data.get();
    }
  }
  if (scratch.size() < static_cast<size_t>(n)) scratch.resize(n);
  ToBf16(data, scratch.data(), n);
  return scratch.data();
}

void ForgetBf16(const float* data, int64_t n) {
  if (!Entries().empty()) DropOverlapping(Entries(), data, n, g_largest, Drop);
}

void ClearBf16() {
  Entries().clear();
  Spare().clear();
  g_bytes = 0;
  g_spareBytes = 0;
  g_largest = 0;
}

namespace {

// setBf16CacheMB(mb): the cache's budget from now on (0 turns it off); empties it.
Napi::Value SetBf16CacheMB(const Napi::CallbackInfo& info) {
  const double mb = f64(info, 0);
  require(info, mb >= 0, "setBf16CacheMB: the budget must be >= 0 MiB");
  ClearBf16();
  g_maxBytes = MbToBytes(mb);
  return info.Env().Undefined();
}

// bf16CacheStats() -> { entries, bytes }: for tests and benchmarks.
Napi::Value Bf16CacheStats(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("entries", Napi::Number::New(info.Env(), static_cast<double>(Entries().size())));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(g_bytes)));
  return o;
}

}  // namespace

void InitBf16Cache(Napi::Env env, Napi::Object exports) {
  exports.Set("bf16CacheStats", Napi::Function::New(env, Bf16CacheStats));
  exports.Set("setBf16CacheMB", Napi::Function::New(env, SetBf16CacheMB));
}

}  // namespace dinots
