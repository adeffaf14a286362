// Multi-head self-attention, one head at a time in cache: the forward pass and its gradient. Batched over all heads, the [B, H, T, T] scores
// go through memory three times (written by q·kᵀ, read and written by softmax, read by probs·v: 30 MB a ViT-S/16
// batch-8 layer), and the strided head operands send both products to oneDNN's slower gemm:jit kernel. Here each
// thread takes whole heads: it copies the head's q, k, v into contiguous blocks, multiplies with brgemm, applies the
// softmax to the scores while they are in L2, and writes the head's output into its columns of out. The float32
// forward of the fused qkv attention (fused_kernels.ts); for training it also keeps the head blocks and the
// probabilities, which the backward pass reads, head by head the same way (dP and dS stay in cache too).
#include <dnnl.hpp>
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <utility>
#include <vector>
#include "common.h"
#include "signal_guard.h"
#include "vmath.h"

namespace dinots {
namespace {

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// The per-head products for one (T, hd), with user scratchpads so that threads can run them side by side:
// scores [T, T] = a [T, hd]·bᵀ, out [T, hd] = p [T, T]·b [T, hd], and (backward) outT [T, hd] = pᵀ·b.
struct HeadPrims {
  dnnl::memory::desc q, kT, scores, v, out, scoresT;
  dnnl::matmul scoresPrim, outPrim, outTPrim;
  dnnl::memory::desc scoresScratch, outScratch, outTScratch;
  size_t scratch;  // bytes: the largest of the scratchpads
};

HeadPrims& Prims(int64_t T, int64_t hd) {
  static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<HeadPrims>> cache;
  auto& slot = cache[{T, hd}];
  if (slot) return *slot;
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::memory::desc q({T, hd}, dt::f32, dims{hd, 1}), kT({hd, T}, dt::f32, dims{1, hd}), s({T, T}, dt::f32, dims{T, 1});
  dnnl::memory::desc v({T, hd}, dt::f32, dims{hd, 1}), o({T, hd}, dt::f32, dims{hd, 1});
  dnnl::memory::desc sT({T, T}, dt::f32, dims{1, T});
  dnnl::matmul::primitive_desc sp(dnnl::matmul::desc(q, kT, s), attr, Engine()), op(dnnl::matmul::desc(s, v, o), attr, Engine());
  dnnl::matmul::primitive_desc tp(dnnl::matmul::desc(sT, v, o), attr, Engine());
  const size_t scratch =
      std::max({sp.scratchpad_desc().get_size(), op.scratchpad_desc().get_size(), tp.scratchpad_desc().get_size()});
  slot.reset(new HeadPrims{q, kT, s, v, o, sT, dnnl::matmul(sp), dnnl::matmul(op), dnnl::matmul(tp), sp.scratchpad_desc(),
                           op.scratchpad_desc(), tp.scratchpad_desc(), scratch});
  return *slot;
}

// Per-thread working memory, grown on demand: a stream, the primitives' scratchpad, and q, k, v, out and scores blocks.
struct ThreadBuffers {
  std::unique_ptr<dnnl::stream> stream;
  std::vector<char> scratch;
  std::vector<float> blocks;
};

std::vector<ThreadBuffers>& Buffers(int threads, size_t scratch, size_t floats) {
  static std::vector<ThreadBuffers> all;
  if (static_cast<int>(all.size()) < threads) all.resize(threads);
  for (auto& b : all) {
    if (!b.stream) b.stream.reset(new dnnl::stream(Engine()));
    if (b.scratch.size() < scratch) b.scratch.resize(scratch);
    if (b.blocks.size() < floats) b.blocks.resize(floats);
  }
  return all;
}

// Row-wise softmax of scale·x in place (the same arithmetic as the softmax kernel in nn_ops.cc).
void SoftmaxRows(float* x, int64_t rows, int64_t cols, float scale) {
  for (int64_t r = 0; r < rows; ++r, x += cols) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t c = 0; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) {
      const float e = std::exp((x[c] - mx) * scale);
      x[c] = e;
      sum += e;
    }
    const float inv = 1.f / sum;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) x[c] *= inv;
  }
}

// Copies between a contiguous [T, hd] block and the [T, hd] columns at `strided` (row stride ld), either way.
void CopyBlock(float* block, float* strided, int64_t T, int64_t hd, int64_t ld, bool toBlock) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = strided + t * ld;
    float* b = block + t * hd;
    if (toBlock) {
#pragma omp simd
      for (int64_t j = 0; j < hd; ++j) b[j] = row[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < hd; ++j) row[j] = b[j];
    }
  }
}

// c = a·b with one of the per-head primitives, on this thread's stream and scratchpad.
void Run(const dnnl::matmul& prim, const dnnl::memory::desc& scratchDesc, ThreadBuffers& tb, const dnnl::memory::desc& a,
         const float* aData, const dnnl::memory::desc& b, const float* bData, const dnnl::memory::desc& c, float* cData) {
  auto& eng = Engine();
  prim.execute(*tb.stream, {{DNNL_ARG_SRC, dnnl::memory(a, eng, const_cast<float*>(aData))},
                            {DNNL_ARG_WEIGHTS, dnnl::memory(b, eng, const_cast<float*>(bData))},
                            {DNNL_ARG_DST, dnnl::memory(c, eng, cData)},
                            {DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchDesc, eng, tb.scratch.data())}});
}

// attentionHeads(qkv, out, [B, T, H, hd], scale, probs | null[, heads]): for every batch b and head h, with q, k, v
// the [T, hd] blocks of qkv [B, T, 3, H, hd], out[b, :, h·hd : (h+1)·hd] = softmax(scale·q·kᵀ)·v; the probabilities
// go to probs [B, H, T, T] and the blocks to heads [3, B, H, T, hd] when given.
Napi::Value AttentionHeads(const Napi::CallbackInfo& info) {
  F32 qkv = f32(info, 0), out = f32(info, 1);
  auto d = ints(info, 2);
  require(info, d.size() == 4, "attentionHeads: dims are [B, T, H, hd]");
  const int64_t B = d[0], T = d[1], H = d[2], hd = d[3], D = H * hd;
  require(info, B > 0 && T > 0 && H > 0 && hd > 0, "attentionHeads: dims must be positive");
  const float scale = static_cast<float>(f64(info, 3));
  const bool withProbs = !info[4].IsNull() && !info[4].IsUndefined();
  F32 probs{nullptr, 0}, heads{nullptr, 0};
  if (withProbs) probs = f32(info, 4);
  const bool withHeads = info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined();
  if (withHeads) heads = f32(info, 5);
  require(info, qkv.size == B * T * 3 * D && out.size == B * T * D && (!withProbs || probs.size == B * H * T * T) &&
                    (!withHeads || heads.size == 3 * B * T * D),
          "attentionHeads: buffer sizes do not match the dims");
  SignalGuard noSignals;
  HeadPrims& p = Prims(T, hd);
  const int threads = omp_get_max_threads();
  const int64_t blockFloats = 4 * T * hd + T * T;
  auto& buffers = Buffers(threads, p.scratch + 64, static_cast<size_t>(blockFloats));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    ThreadBuffers& tb = buffers[omp_get_thread_num()];
    const int64_t b = bh / H, h = bh % H;
    float *q = tb.blocks.data(), *k = q + T * hd, *v = k + T * hd, *o = v + T * hd;
    if (withHeads) {
      q = heads.data + bh * T * hd;
      k = q + B * T * D;
      v = k + B * T * D;
    }
    float* s = withProbs ? probs.data + bh * T * T : o + T * hd;
    float* src = qkv.data + b * T * 3 * D + h * hd;
    CopyBlock(q, src, T, hd, 3 * D, true);
    CopyBlock(k, src + D, T, hd, 3 * D, true);
    CopyBlock(v, src + 2 * D, T, hd, 3 * D, true);
    // oneDNN runs single-threaded inside this parallel loop: each thread multiplies its own heads.
    Run(p.scoresPrim, p.scoresScratch, tb, p.q, q, p.kT, k, p.scores, s);
    SoftmaxRows(s, T, T, scale);
    Run(p.outPrim, p.outScratch, tb, p.scores, s, p.v, v, p.out, o);
    CopyBlock(o, out.data + b * T * D + h * hd, T, hd, D, false);
  }
  return info.Env().Undefined();
}

// attentionHeadsGrad(heads, probs, dout, dqkv, [B, T, H, hd], scale, dprobs | null): the gradient of attentionHeads
// with respect to qkv, from the saved head blocks [3, B, H, T, hd] and probabilities [B, H, T, T], the output's
// gradient dout [B, T, H·hd] and an optional gradient on the probabilities; written into dqkv [B, T, 3, H, hd].
Napi::Value AttentionHeadsGrad(const Napi::CallbackInfo& info) {
  F32 heads = f32(info, 0), probs = f32(info, 1), dout = f32(info, 2), dqkv = f32(info, 3);
  auto d = ints(info, 4);
  require(info, d.size() == 4, "attentionHeadsGrad: dims are [B, T, H, hd]");
  const int64_t B = d[0], T = d[1], H = d[2], hd = d[3], D = H * hd;
  require(info, B > 0 && T > 0 && H > 0 && hd > 0, "attentionHeadsGrad: dims must be positive");
  const float scale = static_cast<float>(f64(info, 5));
  const bool withDprobs = info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined();
  F32 dprobs{nullptr, 0};
  if (withDprobs) dprobs = f32(info, 6);
  require(info, heads.size == 3 * B * T * D && probs.size == B * H * T * T && dout.size == B * T * D &&
                    dqkv.size == 3 * B * T * D && (!withDprobs || dprobs.size == probs.size),
          "attentionHeadsGrad: buffer sizes do not match the dims");
  SignalGuard noSignals;
  HeadPrims& p = Prims(T, hd);
  auto& buffers = Buffers(omp_get_max_threads(), p.scratch + 64, static_cast<size_t>(4 * T * hd + T * T));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    ThreadBuffers& tb = buffers[omp_get_thread_num()];
    const int64_t b = bh / H, h = bh % H;
    const float *q = heads.data + bh * T * hd, *k = q + B * T * D, *v = k + B * T * D, *P = probs.data + bh * T * T;
    float *dO = tb.blocks.data(), *dq = dO + T * hd, *dk = dq + T * hd, *dv = dk + T * hd, *dS = dv + T * hd;
    CopyBlock(dO, dout.data + b * T * D + h * hd, T, hd, D, true);
    Run(p.outTPrim, p.outTScratch, tb, p.scoresT, P, p.v, dO, p.out, dv);  // dV = Pᵀ·dO
    Run(p.scoresPrim, p.scoresScratch, tb, p.q, dO, p.kT, v, p.scores, dS);  // dP = dO·Vᵀ
    const float* extra = withDprobs ? dprobs.data + bh * T * T : nullptr;
    for (int64_t t = 0; t < T; ++t) {  // dS = scale·P∘(dP − rowsum(dP∘P)), in place
      const float* pr = P + t * T;
      float* g = dS + t * T;
      if (extra) {
#pragma omp simd
        for (int64_t c = 0; c < T; ++c) g[c] += extra[t * T + c];
      }
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < T; ++c) dot += pr[c] * g[c];
#pragma omp simd
      for (int64_t c = 0; c < T; ++c) g[c] = scale * pr[c] * (g[c] - dot);
    }
    Run(p.outPrim, p.outScratch, tb, p.scores, dS, p.v, k, p.out, dq);     // dQ = dS·K
    Run(p.outTPrim, p.outTScratch, tb, p.scoresT, dS, p.v, q, p.out, dk);  // dK = dSᵀ·Q
    float* into = dqkv.data + b * T * 3 * D + h * hd;
    CopyBlock(dq, into, T, hd, 3 * D, false);
    CopyBlock(dk, into + D, T, hd, 3 * D, false);
    CopyBlock(dv, into + 2 * D, T, hd, 3 * D, false);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionHeads", Napi::Function::New(env, AttentionHeads));
  exports.Set("attentionHeadsGrad", Napi::Function::New(env, AttentionHeadsGrad));
}

}  // namespace dinots
