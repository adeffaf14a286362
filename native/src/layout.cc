// Data movement: transpose (any permutation), concat along an axis, slice.
#include <omp.h>
#include <algorithm>
#include <cstring>
#include "common.h"

namespace dinots {
namespace {

// transpose(x, shape, perm, out)
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), y = f32(info, 3);
  auto shape = ints(info, 1), perm = ints(info, 2);
  require(info, shape.size() == perm.size(), "transpose: perm length differs from rank");
  require(info, x.size == y.size, "transpose: input and output sizes differ");
  if (x.size == 0) return info.Env().Undefined();
  // Drop size-1 dims, then merge runs of input dims that stay adjacent and in order in the output.
  std::vector<int64_t> keep(shape.size(), -1), dims;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != 1) { keep[i] = static_cast<int64_t>(dims.size()); dims.push_back(shape[i]); }
  std::vector<int64_t> p;
  for (auto a : perm)
    if (keep[a] >= 0) p.push_back(keep[a]);
  std::vector<int64_t> cd, cp;  // merged input dims (in input order) and merged perm
  {
    std::vector<std::vector<int64_t>> groups;  // output-order groups of consecutive input dims
    for (auto a : p) {
      if (!groups.empty() && groups.back().back() + 1 == a) groups.back().push_back(a);
      else groups.push_back({a});
    }
    std::vector<std::pair<int64_t, size_t>> order;  // (first input dim, group index)
    for (size_t g = 0; g < groups.size(); ++g) order.push_back({groups[g][0], g});
    std::sort(order.begin(), order.end());
    std::vector<int64_t> newIndex(groups.size());
    for (size_t k = 0; k < order.size(); ++k) {
      int64_t d = 1;
      for (auto a : groups[order[k].second]) d *= dims[a];
      cd.push_back(d);
      newIndex[order[k].second] = static_cast<int64_t>(k);
    }
    for (size_t g = 0; g < groups.size(); ++g) cp.push_back(newIndex[g]);
  }
  const size_t r = cd.size();
  if (r <= 1) {
    std::memcpy(y.data, x.data, sizeof(float) * x.size);
    return info.Env().Undefined();
  }
  std::vector<int64_t> istr(r), od(r), is(r), os(r);
  istr[r - 1] = 1;
  for (size_t i = r - 1; i-- > 0;) istr[i] = istr[i + 1] * cd[i + 1];
  for (size_t i = 0; i < r; ++i) { od[i] = cd[cp[i]]; is[i] = istr[cp[i]]; }
  os[r - 1] = 1;
  for (size_t i = r - 1; i-- > 0;) os[i] = os[i + 1] * od[i + 1];

  const float* src = x.data;
  float* dst = y.data;
  if (is[r - 1] == 1) {
    // The innermost dim stays innermost: copy contiguous rows.
    const int64_t n = od[r - 1], rows = x.size / n;
#pragma omp parallel for schedule(static) if (x.size >= kParallelMin)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t rem = row, io = 0;
      for (size_t k = r - 1; k-- > 0;) {
        io += (rem % od[k]) * is[k];
        rem /= od[k];
      }
      std::memcpy(dst + row * n, src + io, sizeof(float) * n);
    }
    return info.Env().Undefined();
  }
  // Tiles over two output dims: j (input-contiguous) and the last (output-contiguous), 32x32 each.
  size_t j = 0;
  while (is[j] != 1) ++j;
  const int64_t T = 32, A = od[j], B = od[r - 1];
  int64_t outer = 1;
  std::vector<size_t> rest;
  for (size_t i = 0; i + 1 < r; ++i)
    if (i != j) { outer *= od[i]; rest.push_back(i); }
  const int64_t ta = (A + T - 1) / T, tb = (B + T - 1) / T;
#pragma omp parallel for collapse(3) schedule(static) if (x.size >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t a0 = 0; a0 < ta; ++a0) {
      for (int64_t b0 = 0; b0 < tb; ++b0) {
        int64_t rem = o, io = 0, oo = 0;
        for (size_t k = rest.size(); k-- > 0;) {
          int64_t idx = rem % od[rest[k]];
          rem /= od[rest[k]];
          io += idx * is[rest[k]];
          oo += idx * os[rest[k]];
        }
        const int64_t aEnd = (a0 + 1) * T < A ? (a0 + 1) * T : A, bEnd = (b0 + 1) * T < B ? (b0 + 1) * T : B;
        for (int64_t a = a0 * T; a < aEnd; ++a)
          for (int64_t b = b0 * T; b < bEnd; ++b) dst[oo + a * os[j] + b] = src[io + a + b * is[r - 1]];
      }
    }
  }
  return info.Env().Undefined();
}

// concat(inputs[], innerSizes[], outer, out): out[o, :] = [in0[o, :], in1[o, :], ...]
Napi::Value Concat(const Napi::CallbackInfo& info) {
  auto arr = info[0].As<Napi::Array>();
  auto inner = ints(info, 1);
  int64_t outer = i64(info, 2);
  F32 y = f32(info, 3);
  std::vector<const float*> src(arr.Length());
  int64_t rowLen = 0;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    auto fa = arr.Get(k).As<Napi::Float32Array>();
    require(info, static_cast<int64_t>(fa.ElementLength()) == outer * inner[k], "concat: input size does not match");
    src[k] = fa.Data();
    rowLen += inner[k];
  }
  require(info, y.size == outer * rowLen, "concat: output size does not match");
  if (outer < omp_get_max_threads() && y.size >= kParallelMin) {
    // Few long rows (stack/concat on axis 0): split the copies themselves across threads.
    struct Piece { const float* src; float* dst; int64_t len; };
    std::vector<Piece> pieces;
    const int64_t chunk = 1 << 16;
    for (int64_t o = 0; o < outer; ++o) {
      float* dst = y.data + o * rowLen;
      for (size_t k = 0; k < src.size(); ++k) {
        for (int64_t c = 0; c < inner[k]; c += chunk)
          pieces.push_back({src[k] + o * inner[k] + c, dst + c, inner[k] - c < chunk ? inner[k] - c : chunk});
        dst += inner[k];
      }
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < pieces.size(); ++i) std::memcpy(pieces[i].dst, pieces[i].src, sizeof(float) * pieces[i].len);
    return info.Env().Undefined();
  }
#pragma omp parallel for schedule(static) if (y.size >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    float* dst = y.data + o * rowLen;
    for (size_t k = 0; k < src.size(); ++k) {
      std::memcpy(dst, src[k] + o * inner[k], sizeof(float) * inner[k]);
      dst += inner[k];
    }
  }
  return info.Env().Undefined();
}

// slice(x, shape, begin, size, out)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  F32 x = f32(info, 0), y = f32(info, 4);
  auto shape = ints(info, 1), begin = ints(info, 2), size = ints(info, 3);
  size_t r = shape.size();
  require(info, begin.size() == r && size.size() == r, "slice: begin/size rank differs from the input rank");
  int64_t n = 1;
  for (auto s : size) n *= s;
  require(info, y.size == n, "slice: output size does not match");
  if (n == 0) return info.Env().Undefined();
  if (r == 0) { y.data[0] = x.data[0]; return info.Env().Undefined(); }
  std::vector<int64_t> istr(r);
  istr[r - 1] = 1;
  for (size_t i = r - 1; i-- > 0;) istr[i] = istr[i + 1] * shape[i + 1];
  // Trailing dims taken whole are one contiguous run.
  size_t last = r - 1;
  int64_t run = size[last];
  while (last > 0 && size[last] == shape[last] && begin[last] == 0) { --last; run *= size[last]; }
  int64_t base = 0;
  for (size_t i = 0; i < r; ++i) base += begin[i] * istr[i];
  int64_t rows = n / run;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = base;
    for (size_t i = last; i-- > 0;) {
      off += (rem % size[i]) * istr[i];
      rem /= size[i];
    }
    std::memcpy(y.data + row * run, x.data + off, sizeof(float) * run);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("concat", Napi::Function::New(env, Concat));
  exports.Set("slice", Napi::Function::New(env, Slice));
}

}  // namespace dinots
