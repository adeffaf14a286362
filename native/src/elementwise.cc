// Elementwise kernels: binary ops with NumPy broadcasting, and unary math ops.
#include <omp.h>
#include <cmath>
#include "vmath.h"
#include <cstring>
#include "common.h"

namespace dinots {
namespace {

// Binary op codes shared with the TS side (src/backend/native/addon.ts).
enum BinOp { kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow, kSquaredDiff, kFirst };

template <int OP>
inline float Apply(float x, float y) {
  if constexpr (OP == kAdd) return x + y;
  if constexpr (OP == kSub) return x - y;
  if constexpr (OP == kMul) return x * y;
  if constexpr (OP == kDiv) return x / y;
  if constexpr (OP == kMax) return (x != x || y != y) ? NAN : (x > y ? x : y);
  if constexpr (OP == kMin) return (x != x || y != y) ? NAN : (x < y ? x : y);
  if constexpr (OP == kPow) return std::pow(x, y);
  if constexpr (OP == kSquaredDiff) return (x - y) * (x - y);
  if constexpr (OP == kFirst) return x;  // broadcast copy of a (Tile, BroadcastTo)
  return 0.f;
}

// One contiguous run of the output; sa/sb are 0 (broadcast) or 1 (contiguous).
template <int OP>
inline void Row(const float* a, const float* b, float* o, int64_t n, int64_t sa, int64_t sb) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = Apply<OP>(a[i], b[i]);
  } else if (sa == 1) {
    const float y = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = Apply<OP>(a[i], y);
  } else if (sb == 1) {
    const float x = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = Apply<OP>(x, b[i]);
  } else {
    const float v = Apply<OP>(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

struct Plan {
  std::vector<int64_t> dims, sa, sb;  // collapsed output dims and input element strides (0 = broadcast)
};

// Pads both shapes to the output rank, derives broadcast strides and merges dims that stay contiguous together.
Plan MakePlan(const std::vector<int64_t>& as, const std::vector<int64_t>& bs, const std::vector<int64_t>& os) {
  size_t r = os.size();
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  int64_t ka = 1, kb = 1;
  for (size_t i = r; i-- > 0;) {
    int64_t ai = static_cast<int64_t>(i) - static_cast<int64_t>(r - as.size());
    int64_t bi = static_cast<int64_t>(i) - static_cast<int64_t>(r - bs.size());
    int64_t da = ai >= 0 ? as[ai] : 1, db = bi >= 0 ? bs[bi] : 1;
    sa[i] = da == 1 ? 0 : ka;
    sb[i] = db == 1 ? 0 : kb;
    ka *= da;
    kb *= db;
  }
  Plan p;
  for (size_t i = 0; i < r; ++i) {
    if (os[i] == 1) continue;  // size-1 dims do not move any index
    if (!p.dims.empty()) {
      int64_t d = os[i];
      size_t j = p.dims.size() - 1;
      if (p.sa[j] == sa[i] * d && p.sb[j] == sb[i] * d) {
        p.dims[j] *= d;
        p.sa[j] = sa[i];
        p.sb[j] = sb[i];
        continue;
      }
    }
    p.dims.push_back(os[i]);
    p.sa.push_back(sa[i]);
    p.sb.push_back(sb[i]);
  }
  if (p.dims.empty()) {
    p.dims = {1};
    p.sa = {0};
    p.sb = {0};
  }
  return p;
}

template <int OP>
void RunBinary(const float* a, const float* b, float* o, const Plan& p) {
  const size_t r = p.dims.size();
  const int64_t n = p.dims[r - 1], ia = p.sa[r - 1], ib = p.sb[r - 1];
  int64_t outer = 1;
  for (size_t i = 0; i + 1 < r; ++i) outer *= p.dims[i];
  const int64_t total = outer * n;
  if (outer == 1) {
    // One long run: split it across threads.
    const int64_t chunk = 4096;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
    for (int64_t c = 0; c < n; c += chunk) {
      int64_t len = n - c < chunk ? n - c : chunk;
      Row<OP>(a + c * ia, b + c * ib, o + c, len, ia, ib);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int64_t row = 0; row < outer; ++row) {
    int64_t rem = row, oa = 0, ob = 0;
    for (size_t i = r - 1; i-- > 0;) {
      int64_t idx = rem % p.dims[i];
      rem /= p.dims[i];
      oa += idx * p.sa[i];
      ob += idx * p.sb[i];
    }
    Row<OP>(a + oa, b + ob, o + row * n, n, ia, ib);
  }
}

// binary(op, a, aShape, b, bShape, out, outShape)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  int op = static_cast<int>(i64(info, 0));
  F32 a = f32(info, 1), b = f32(info, 3), o = f32(info, 5);
  auto as = ints(info, 2), bs = ints(info, 4), os = ints(info, 6);
  int64_t na = 1, nb = 1, no = 1;
  for (auto d : as) na *= d;
  for (auto d : bs) nb *= d;
  for (auto d : os) no *= d;
  require(info, na == a.size && nb == b.size && no == o.size, "binary: buffer sizes do not match the shapes");
  if (no == 0) return info.Env().Undefined();
  Plan p = MakePlan(as, bs, os);
  switch (op) {
    case kAdd: RunBinary<kAdd>(a.data, b.data, o.data, p); break;
    case kSub: RunBinary<kSub>(a.data, b.data, o.data, p); break;
    case kMul: RunBinary<kMul>(a.data, b.data, o.data, p); break;
    case kDiv: RunBinary<kDiv>(a.data, b.data, o.data, p); break;
    case kMax: RunBinary<kMax>(a.data, b.data, o.data, p); break;
    case kMin: RunBinary<kMin>(a.data, b.data, o.data, p); break;
    case kPow: RunBinary<kPow>(a.data, b.data, o.data, p); break;
    case kSquaredDiff: RunBinary<kSquaredDiff>(a.data, b.data, o.data, p); break;
    case kFirst: RunBinary<kFirst>(a.data, b.data, o.data, p); break;
    default: throw Napi::RangeError::New(info.Env(), "binary: unknown op code");
  }
  return info.Env().Undefined();
}

// Unary op codes shared with the TS side.
enum UnOp { kNeg = 0, kAbs, kExp, kLog, kSqrt, kRsqrt, kSquare, kRelu, kSigmoid, kTanh, kErf, kReciprocal, kLog1p, kRelu6, kStep, kSoftplus, kExpm1, kSign };

template <int OP>
void RunUnary(const float* x, float* y, int64_t n, float alpha) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float r;
    if constexpr (OP == kNeg) r = -v;
    if constexpr (OP == kAbs) r = std::fabs(v);
    if constexpr (OP == kExp) r = std::exp(v);
    if constexpr (OP == kLog) r = std::log(v);
    if constexpr (OP == kSqrt) r = std::sqrt(v);
    if constexpr (OP == kRsqrt) r = 1.f / std::sqrt(v);
    if constexpr (OP == kSquare) r = v * v;
    if constexpr (OP == kRelu) r = v > 0.f ? v : (v != v ? v : 0.f);
    if constexpr (OP == kSigmoid) r = 1.f / (1.f + std::exp(-v));
    if constexpr (OP == kTanh) r = std::tanh(v);
    if constexpr (OP == kErf) r = std::erf(v);
    if constexpr (OP == kReciprocal) r = 1.f / v;
    if constexpr (OP == kLog1p) r = std::log1p(v);
    if constexpr (OP == kRelu6) r = v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    if constexpr (OP == kStep) r = v > 0.f ? 1.f : (v != v ? v : alpha);
    if constexpr (OP == kSoftplus) r = v > 20.f ? v : std::log1p(std::exp(v));
    if constexpr (OP == kExpm1) r = std::expm1(v);
    if constexpr (OP == kSign) r = v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f);
    y[i] = r;
  }
}

// unary(op, x, out, alpha)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  int op = static_cast<int>(i64(info, 0));
  F32 x = f32(info, 1), y = f32(info, 2);
  float alpha = info.Length() > 3 ? static_cast<float>(f64(info, 3)) : 0.f;
  require(info, x.size == y.size, "unary: input and output sizes differ");
  switch (op) {
#define CASE(K) case K: RunUnary<K>(x.data, y.data, x.size, alpha); break;
    CASE(kNeg) CASE(kAbs) CASE(kExp) CASE(kLog) CASE(kSqrt) CASE(kRsqrt) CASE(kSquare) CASE(kRelu) CASE(kSigmoid)
    CASE(kTanh) CASE(kErf) CASE(kReciprocal) CASE(kLog1p) CASE(kRelu6) CASE(kStep) CASE(kSoftplus) CASE(kExpm1) CASE(kSign)
#undef CASE
    default: throw Napi::RangeError::New(info.Env(), "unary: unknown op code");
  }
  return info.Env().Undefined();
}

// fill(out, value): Fill/ZerosLike/OnesLike without a JS loop.
Napi::Value Fill(const Napi::CallbackInfo& info) {
  F32 o = f32(info, 0);
  float v = static_cast<float>(f64(info, 1));
#pragma omp parallel for simd schedule(static) if (o.size >= kParallelMin)
  for (int64_t i = 0; i < o.size; ++i) o.data[i] = v;
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("fill", Napi::Function::New(env, Fill));
}

}  // namespace dinots
