// Multi-head self-attention by groups of heads in cache: the forward pass and its gradient. Batched over all heads,
// the [B, H, T, T] scores go through memory three times (written by q·kᵀ, read and written by softmax, read by
// probs·v: 30 MB a ViT-S/16 batch-8 layer), and strided head operands send the products to oneDNN's slower gemm:jit
// kernel. Here each thread takes whole groups of heads (as many as fit in L2 with their scores: 2 for ViT-S/16, 24
// for the nano model's 50 tokens, whose single heads are too small for a primitive call each): it copies their q, k,
// v into contiguous blocks, multiplies with brgemm, applies the softmax to the scores while they are in L2, and
// writes the heads' outputs into their columns of out. This is the float32 forward of the fused qkv attention
// (fused_kernels.ts); for training it also keeps the head blocks and the probabilities, which the backward pass
// reads group by group the same way (dP and dS stay in cache too).
#include <dnnl.hpp>
#include <omp.h>
#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>
#include "common.h"
#include "signal_guard.h"
#include "softmax_rows.h"

namespace dinots {
namespace {

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// The products of a group of G heads of (T, hd), batched over the group, with user scratchpads so that threads can
// run them side by side: scores [G, T, T] = a [G, T, hd]·bᵀ, out [G, T, hd] = p [G, T, T]·b, and (backward)
// outT [G, T, hd] = pᵀ·b.
struct HeadPrims {
  dnnl::memory::desc q, kT, scores, v, out, scoresT;
  dnnl::matmul scoresPrim, outPrim, outTPrim;
  dnnl::memory::desc scoresScratch, outScratch, outTScratch;
  size_t scratch;  // bytes: the largest of the scratchpads
};

HeadPrims& Prims(int64_t G, int64_t T, int64_t hd) {
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<HeadPrims>> cache;
  auto& slot = cache[{G, T, hd}];
  if (slot) return *slot;
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const int64_t th = T * hd, tt = T * T;
  dnnl::memory::desc q({G, T, hd}, dt::f32, dims{th, hd, 1}), kT({G, hd, T}, dt::f32, dims{th, 1, hd});
  dnnl::memory::desc s({G, T, T}, dt::f32, dims{tt, T, 1}), sT({G, T, T}, dt::f32, dims{tt, 1, T});
  dnnl::memory::desc v({G, T, hd}, dt::f32, dims{th, hd, 1}), o({G, T, hd}, dt::f32, dims{th, hd, 1});
  dnnl::matmul::primitive_desc sp(dnnl::matmul::desc(q, kT, s), attr, Engine()), op(dnnl::matmul::desc(s, v, o), attr, Engine());
  dnnl::matmul::primitive_desc tp(dnnl::matmul::desc(sT, v, o), attr, Engine());
  const size_t scratch =
      std::max({sp.scratchpad_desc().get_size(), op.scratchpad_desc().get_size(), tp.scratchpad_desc().get_size()});
  slot.reset(new HeadPrims{q, kT, s, v, o, sT, dnnl::matmul(sp), dnnl::matmul(op), dnnl::matmul(tp), sp.scratchpad_desc(),
                           op.scratchpad_desc(), tp.scratchpad_desc(), scratch});
  return *slot;
}

// Per-thread working memory, grown on demand: a stream, the primitives' scratchpad, and a group's q, k, v, out and
// scores blocks.
struct ThreadBuffers {
  std::unique_ptr<dnnl::stream> stream;
  std::vector<char> scratch;
  std::vector<float> blocks;
};

std::vector<ThreadBuffers>& Buffers(int threads, size_t scratch, size_t floats) {
  thread_local std::vector<ThreadBuffers> all;
  if (static_cast<int>(all.size()) < threads) all.resize(threads);
  for (auto& b : all) {
    if (!b.stream) b.stream.reset(new dnnl::stream(Engine()));
    if (b.scratch.size() < scratch) b.scratch.resize(scratch);
    if (b.blocks.size() < floats) b.blocks.resize(floats);
  }
  return all;
}

// Heads per group: as many as fit in 1 MiB of L2 with their blocks and scores, and an equal number of groups for
// every thread.
int64_t GroupSize(int64_t heads, int64_t T, int64_t hd, int threads) {
  const int64_t fit = std::max<int64_t>(1, (int64_t{1} << 18) / (T * T + 4 * T * hd));
  const int64_t perThread = (heads + threads - 1) / threads;
  const int64_t groupsPerThread = (perThread + fit - 1) / fit;
  return (perThread + groupsPerThread - 1) / groupsPerThread;
}

// How `heads` heads of (T, hd) split into groups, with the primitives for a full group and for the last one, and
// every thread's working memory (room for four [G, T, hd] blocks and a group's scores).
struct GroupPlan {
  int64_t G, groups;
  HeadPrims &full, &last;
  std::vector<ThreadBuffers>& buffers;

  // The primitives for a group of g heads.
  HeadPrims& PrimsOf(int64_t g) const { return g == G ? full : last; }
};

GroupPlan PlanGroups(int64_t heads, int64_t T, int64_t hd) {
  const int threads = omp_get_max_threads();
  const int64_t G = GroupSize(heads, T, hd, threads), groups = (heads + G - 1) / G;
  HeadPrims& full = Prims(G, T, hd);
  HeadPrims& last = Prims(heads - (groups - 1) * G, T, hd);
  auto& buffers = Buffers(threads, std::max(full.scratch, last.scratch) + 64, static_cast<size_t>(G * (4 * T * hd + T * T)));
  return GroupPlan{G, groups, full, last, buffers};
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

// c = a·b with one of the head-group primitives, on this thread's stream and scratchpad.
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
  const int64_t BH = B * H;
  const GroupPlan plan = PlanGroups(BH, T, hd);
#pragma omp parallel for schedule(static)
  for (int64_t group = 0; group < plan.groups; ++group) {
    ThreadBuffers& tb = plan.buffers[omp_get_thread_num()];
    const int64_t first = group * plan.G, g = std::min(plan.G, BH - first), gth = g * T * hd;
    HeadPrims& p = plan.PrimsOf(g);
    float *q = tb.blocks.data(), *k = q + gth, *v = k + gth, *o = v + gth;
    if (withHeads) {  // the saved blocks [3, B, H, T, hd]: a group's heads are consecutive there
      q = heads.data + first * T * hd;
      k = q + B * T * D;
      v = k + B * T * D;
    }
    float* s = withProbs ? probs.data + first * T * T : o + gth;
    for (int64_t i = 0; i < g; ++i) {
      const int64_t b = (first + i) / H, h = (first + i) % H;
      float* src = qkv.data + b * T * 3 * D + h * hd;
      CopyBlock(q + i * T * hd, src, T, hd, 3 * D, true);
      CopyBlock(k + i * T * hd, src + D, T, hd, 3 * D, true);
      CopyBlock(v + i * T * hd, src + 2 * D, T, hd, 3 * D, true);
    }
    // oneDNN runs single-threaded inside this parallel loop: each thread multiplies its own groups.
    Run(p.scoresPrim, p.scoresScratch, tb, p.q, q, p.kT, k, p.scores, s);
    for (int64_t r = 0; r < g * T; ++r) SoftmaxRow(s + r * T, s + r * T, T, scale);
    Run(p.outPrim, p.outScratch, tb, p.scores, s, p.v, v, p.out, o);
    for (int64_t i = 0; i < g; ++i) {
      const int64_t b = (first + i) / H, h = (first + i) % H;
      CopyBlock(o + i * T * hd, out.data + b * T * D + h * hd, T, hd, D, false);
    }
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
  const int64_t BH = B * H;
  const GroupPlan plan = PlanGroups(BH, T, hd);
#pragma omp parallel for schedule(static)
  for (int64_t group = 0; group < plan.groups; ++group) {
    ThreadBuffers& tb = plan.buffers[omp_get_thread_num()];
    const int64_t first = group * plan.G, g = std::min(plan.G, BH - first), gth = g * T * hd;
    HeadPrims& p = plan.PrimsOf(g);
    const float *q = heads.data + first * T * hd, *k = q + B * T * D, *v = k + B * T * D, *P = probs.data + first * T * T;
    float *dO = tb.blocks.data(), *dq = dO + gth, *dk = dq + gth, *dv = dk + gth, *dS = dv + gth;
    for (int64_t i = 0; i < g; ++i) {
      const int64_t b = (first + i) / H, h = (first + i) % H;
      CopyBlock(dO + i * T * hd, dout.data + b * T * D + h * hd, T, hd, D, true);
    }
    Run(p.outTPrim, p.outTScratch, tb, p.scoresT, P, p.v, dO, p.out, dv);  // dV = Pᵀ·dO
    Run(p.scoresPrim, p.scoresScratch, tb, p.q, dO, p.kT, v, p.scores, dS);  // dP = dO·Vᵀ
    const float* extra = withDprobs ? dprobs.data + first * T * T : nullptr;
    for (int64_t r = 0; r < g * T; ++r) {  // dS = scale·P∘(dP − rowsum(dP∘P)), in place
      float* d = dS + r * T;
      if (extra) {
#pragma omp simd
        for (int64_t c = 0; c < T; ++c) d[c] += extra[r * T + c];
      }
      SoftmaxGradRow(P + r * T, d, d, T, scale);
    }
    Run(p.outPrim, p.outScratch, tb, p.scores, dS, p.v, k, p.out, dq);     // dQ = dS·K
    Run(p.outTPrim, p.outTScratch, tb, p.scoresT, dS, p.v, q, p.out, dk);  // dK = dSᵀ·Q
    for (int64_t i = 0; i < g; ++i) {
      const int64_t b = (first + i) / H, h = (first + i) % H;
      float* into = dqkv.data + b * T * 3 * D + h * hd;
      CopyBlock(dq + i * T * hd, into, T, hd, 3 * D, false);
      CopyBlock(dk + i * T * hd, into + D, T, hd, 3 * D, false);
      CopyBlock(dv + i * T * hd, into + 2 * D, T, hd, 3 * D, false);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionHeads", Napi::Function::New(env, AttentionHeads));
  exports.Set("attentionHeadsGrad", Napi::Function::New(env, AttentionHeadsGrad));
}

}  // namespace dinots
