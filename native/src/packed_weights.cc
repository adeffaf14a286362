// Float32 Linear weights pre-packed in oneDNN's blocked layout. A matmul whose weights are given in that layout
// (format_tag::any, reordered once) skips the packing that brgemm otherwise does on every call: 3-9% faster on the
// four Linear products of a ViT-S/16 batch-8 forward pass (1576 x 1536 x 384: 6.0 against 6.6 ms).
//
// Packing costs a reorder (0.3-1.4 ms for those weights), as much as one or two products save, so a buffer is packed
// on its second use unchanged: inference reuses weights on every batch, while a training step changes each weight
// (AdamW) before its next forward product and never packs. Entries are keyed by the float32 data pointer and length,
// keep the float32 ArrayBuffer alive (no other array can get its address), and are dropped on every write the
// backend can see, as the bf16 cache's are (ForgetCached: the pool releasing the buffer, AdamW updating it in place).
// Only buffers the caller marks cacheable (pool-owned, never escaped to user code) enter. The packed copies are
// bounded (DINOTS_PACK_CACHE_MB, default 512: all of a ViT-S, most of a ViT-B; the gain is 1-2% of a forward pass,
// not worth doubling the weights of a large model): once full, further weights run unpacked rather than evicting
// others, so a model larger than the budget packs a stable part of itself instead of re-packing everything.
#include <dnnl.hpp>
#include <map>
#include "common.h"
#include "operand_cache.h"

namespace dinots {
namespace {

// Weights smaller than this run unpacked: the gain is below the bookkeeping.
constexpr int64_t kPackMin = 1 << 14;

struct Entry {
  int64_t size;  // float32 values of the source buffer
  bool packed;   // false: seen once, not packed (yet)
  dnnl::memory::desc desc;
  dnnl::memory mem;
  Napi::Reference<Napi::ArrayBuffer> keep;
};

std::map<const float*, Entry>& Entries() {
  thread_local std::map<const float*, Entry> entries;
  return entries;
}
thread_local int64_t g_bytes = 0, g_largest = 0;

thread_local int64_t g_maxBytes = -1;  // -1: not read yet

int64_t MaxBytes() {
  if (g_maxBytes < 0) g_maxBytes = BudgetFromEnv("DINOTS_PACK_CACHE_MB", 512.0);
  return g_maxBytes;
}

void Drop(std::map<const float*, Entry>::iterator it) {
  if (it->second.packed) g_bytes -= static_cast<int64_t>(it->second.desc.get_size());
  Entries().erase(it);
}

}  // namespace

const dnnl::memory* PackedWeights(const Napi::Value& owner, const float* data, int64_t n, const dnnl::memory::desc& plain,
                                  const dnnl::memory::desc& want, const dnnl::engine& eng, const dnnl::stream& stream) {
  if (n < kPackMin || MaxBytes() == 0) return nullptr;
  auto& entries = Entries();
  auto it = entries.find(data);
  if (it != entries.end() && it->second.size != n) {
    Drop(it);
    it = entries.end();
  }
  if (it == entries.end()) {  // first use: remember it, run unpacked
    entries.emplace(data, Entry{n, false, {}, {}, Napi::Persistent(owner.As<Napi::TypedArray>().ArrayBuffer())});
    if (n > g_largest) g_largest = n;
    return nullptr;
  }
  Entry& e = it->second;
  if (e.packed && e.desc == want) return &e.mem;
  const int64_t bytes = static_cast<int64_t>(want.get_size());
  const int64_t freed = e.packed ? static_cast<int64_t>(e.desc.get_size()) : 0;
  if (g_bytes - freed + bytes > MaxBytes()) return nullptr;
  dnnl::memory packed(want, eng);
  dnnl::memory src(plain, eng, const_cast<float*>(data));
  dnnl::reorder(src, packed).execute(stream, src, packed);
  g_bytes += bytes - freed;
  e.packed = true;
  e.desc = want;
  e.mem = packed;
  return &e.mem;
}

void ForgetPacked(const float* data, int64_t n) {
  if (!Entries().empty()) DropOverlapping(Entries(), data, n, g_largest, Drop);
}

void ClearPacked() {
  Entries().clear();
  g_bytes = 0;
  g_largest = 0;
}

namespace {

// setPackCacheMB(mb): the packed weights' budget from now on (0 turns packing off); empties the cache.
Napi::Value SetPackCacheMB(const Napi::CallbackInfo& info) {
  const double mb = f64(info, 0);
  require(info, mb >= 0, "setPackCacheMB: the budget must be >= 0 MiB");
  ClearPacked();
  g_maxBytes = MbToBytes(mb);
  return info.Env().Undefined();
}

// packCacheStats() -> { entries, packed, bytes }: buffers seen, of which packed, and the packed copies' bytes.
Napi::Value PackCacheStats(const Napi::CallbackInfo& info) {
  int64_t packed = 0;
  for (auto& [ptr, e] : Entries()) packed += e.packed ? 1 : 0;
  auto o = Napi::Object::New(info.Env());
  o.Set("entries", Napi::Number::New(info.Env(), static_cast<double>(Entries().size())));
  o.Set("packed", Napi::Number::New(info.Env(), static_cast<double>(packed)));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(g_bytes)));
  return o;
}

}  // namespace

void InitPackedWeights(Napi::Env env, Napi::Object exports) {
  exports.Set("setPackCacheMB", Napi::Function::New(env, SetPackCacheMB));
  exports.Set("packCacheStats", Napi::Function::New(env, PackCacheStats));
}

}  // namespace dinots
