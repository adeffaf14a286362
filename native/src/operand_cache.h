// Shared by the two caches of forms derived from float32 buffers (bf16_cache.cc, packed_weights.cc): their budget,
// and dropping the entries that a rewritten range of memory overlaps.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <iterator>

namespace dinots {

// A budget in MiB (negative counts as 0) in bytes.
inline int64_t MbToBytes(double mb) { return static_cast<int64_t>((mb > 0 ? mb : 0) * 1024 * 1024); }

// A cache's budget in bytes: environment variable `name` in MiB when it is set, else `defaultMb`.
inline int64_t BudgetFromEnv(const char* name, double defaultMb) {
  const char* env = std::getenv(name);
  return MbToBytes(env && *env ? std::atof(env) : defaultMb);
}

// Calls drop(it) on every entry of `entries` (a map from start pointer to an entry of `size` floats, none longer
// than `largest`) that overlaps [data, data + n): the entries that start before data + n and end after data.
template <class Map, class Drop>
void DropOverlapping(Map& entries, const float* data, int64_t n, int64_t largest, Drop drop) {
  auto it = entries.lower_bound(data - largest);
  while (it != entries.end() && it->first < data + n) {
    if (it->first + it->second.size > data) {
      auto next = std::next(it);
      drop(it);
      it = next;
    } else {
      ++it;
    }
  }
}

}  // namespace dinots
