#!/usr/bin/env python3
"""Replays a list of matmul calls in PyTorch (for `npm run bench -- matmul-floor`) and prints one JSON line with the
best wall ms of each call: torch.matmul (OpenBLAS in Debian's torch) on operands of the same shapes and memory
layouts (a transposed operand is a transposed view, as in the step), bias added with torch.addmm / baddbmm.

Usage: OMP_WAIT_POLICY=PASSIVE python3 bench/torch_matmul_replay.py CALLS.json [--threads 2] [--iters 5]
CALLS.json: [{"bA", "bB", "M", "K", "N", "transA", "transB", "bias"}, ...]
"""
import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must be set before torch starts its OpenMP runtime
import torch  # noqa: E402


def operand(batch, rows, cols, trans):
    """[batch, rows, cols], stored transposed ([batch, cols, rows] memory) when `trans`."""
    return torch.randn(batch, cols, rows).transpose(1, 2) if trans else torch.randn(batch, rows, cols)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("calls")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--iters", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.calls) as f:
        calls = json.load(f)
    best = []
    with torch.no_grad():
        for c in calls:
            x = operand(c["bA"], c["M"], c["K"], c["transA"])
            w = operand(c["bB"], c["K"], c["N"], c["transB"])
            bias = torch.randn(c["N"]) if c["bias"] else None
            if c["bA"] == 1 and c["bB"] == 1:
                x, w = x[0], w[0]
                fn = (lambda: torch.addmm(bias, x, w)) if bias is not None else (lambda: torch.mm(x, w))
            else:
                fn = (lambda: torch.baddbmm(bias, x, w)) if bias is not None else (lambda: torch.matmul(x, w))
            fn()
            times = []
            for _ in range(a.iters):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            best.append(min(times))
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(), "best_ms": best}))


if __name__ == "__main__":
    main()
