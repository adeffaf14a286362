#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- train-step`: a plain torch.nn ViT with the same shapes as ours
(pre-norm blocks, CLS token, learned pos-embed, exact GELU, qkv Linear, final LayerNorm on the CLS token).

Times the forward pass (no_grad) and one training step (forward + backward + AdamW), float32, and prints one JSON line.
Usage: OMP_WAIT_POLICY=PASSIVE python3 bench/torch_vit.py --img 224 --patch 16 --dim 384 --depth 12 --heads 6
       [--batch 8] [--threads 2] [--iters 5] [--warmup 2] [--bf16] [--export-onnx FILE]
--bf16: forward and backward under torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN bf16 matmuls; AMX where the
CPU has it), the counterpart of our --precision bf16.
--export-onnx FILE: write the same model (eval mode, float32, input [batch, 3, img, img]) as ONNX (opset 14; Debian's
torch exports without the `onnx` package) for the onnxruntime-node forward baseline, and time nothing.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must be set before torch starts its OpenMP runtime
import torch  # noqa: E402
from torch import nn  # noqa: E402


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def attn(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * hd ** -0.5
        a = a.softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, D))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, chans=3):
        super().__init__()
        self.patch_embed = nn.Conv2d(chans, dim, patch, patch)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x[:, 0])


def timed(fn, warmup, iters):
    """Best and median wall ms, and the best CPU ms of this process (all threads): a contention-robust figure."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(iters):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return min(times), statistics.median(times), min(cpu)


def main():
    p = argparse.ArgumentParser()
    for name, default in [("img", 224), ("patch", 16), ("dim", 384), ("depth", 12), ("heads", 6), ("batch", 8),
                          ("threads", os.cpu_count()), ("iters", 5), ("warmup", 2)]:
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--export-onnx")
    a = p.parse_args()
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ViT(a.img, a.patch, a.dim, a.depth, a.heads)
    x = torch.randn(a.batch, 3, a.img, a.img)
    r = torch.randn(a.batch, a.dim)
    if a.export_onnx:
        model.eval()
        torch.onnx.export(model, (x,), a.export_onnx, opset_version=14, input_names=["x"], output_names=["y"])
        print(json.dumps({"onnx": a.export_onnx}))
        return
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.04)

    def forward():
        with torch.no_grad(), cast():
            model(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with cast():
            loss = (model(x).float() * r).sum()
        loss.backward()
        opt.step()

    fwd_best, fwd_med, fwd_cpu = timed(forward, a.warmup, a.iters)
    step_best, step_med, step_cpu = timed(train_step, a.warmup, a.iters)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(), "bf16": a.bf16,
                      "forward_ms": fwd_best, "forward_median_ms": fwd_med,
                      "train_step_ms": step_best, "train_step_median_ms": step_med,
                      "forward_cpu_ms": fwd_cpu, "train_step_cpu_ms": step_cpu,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
