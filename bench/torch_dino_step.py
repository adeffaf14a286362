#!/usr/bin/env python3
"""A faithful PyTorch DINO (v1) training step, timed: the baseline for bench/dino_step.ts.

Same model, crops and step as main_dino.train_one_epoch (fp32, no autocast): teacher on the global crops, student on
all crops (same-resolution crops batched together), DINO loss with centering, backward, per-parameter gradient
clipping, AdamW with the get_params_groups split, teacher EMA. Written for this benchmark (not the official code).
Prints one JSON line: {"images_per_s": ..., "step_ms": ...}.

Run with Debian's python3-torch: /usr/bin/python3 bench/torch_dino_step.py --embed-dim 384 --depth 12 ...
Use OMP_WAIT_POLICY=PASSIVE and --threads 2 for a fair CPU comparison.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.heads = heads
        self.drop_path = drop_path

    def drop(self, x):
        if not self.training or self.drop_path == 0:
            return x
        keep = 1 - self.drop_path
        mask = torch.floor(keep + torch.rand(x.shape[0], 1, 1))
        return x.div(keep) * mask

    def attn(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        a = a.softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))

    def forward(self, x):
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class ViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, drop_path):
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (img // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, drop_path * i / max(depth - 1, 1)) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def pos(self, h, w):
        n = self.pos_embed.shape[1] - 1
        m = int(math.sqrt(n))
        if h * w == n and h == w:
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((h + 0.1) / m, (w + 0.1) / m), mode='bicubic')
        return torch.cat([self.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)

    def forward(self, x):
        b, _, h, w = x.shape
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.pos(h // self.patch, w // self.patch)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class Head(nn.Module):
    def __init__(self, dim, out_dim, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class MultiCrop(nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        outs, start = [], 0
        sizes = [c.shape[-1] for c in crops]
        while start < len(crops):
            end = start
            while end < len(crops) and sizes[end] == sizes[start]:
                end += 1
            outs.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(outs))


def dino_loss(student_out, teacher_out, center, ncrops, teacher_temp=0.04):
    s = (student_out / 0.1).chunk(ncrops)
    t = F.softmax((teacher_out - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n = 0, 0
    for iq, q in enumerate(t):
        for v in range(ncrops):
            if v != iq:
                total = total + torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
                n += 1
    return total / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--img', type=int, default=224)
    p.add_argument('--patch', type=int, default=16)
    p.add_argument('--embed-dim', type=int, default=384)
    p.add_argument('--depth', type=int, default=12)
    p.add_argument('--heads', type=int, default=6)
    p.add_argument('--out-dim', type=int, default=65536)
    p.add_argument('--hidden', type=int, default=2048)
    p.add_argument('--bottleneck', type=int, default=256)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--global-size', type=int, default=224)
    p.add_argument('--local-size', type=int, default=96)
    p.add_argument('--local-crops', type=int, default=10)
    p.add_argument('--drop-path', type=float, default=0.1)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    student = MultiCrop(ViT(a.img, a.patch, a.embed_dim, a.depth, a.heads, a.drop_path), Head(a.embed_dim, a.out_dim, a.hidden, a.bottleneck))
    teacher = MultiCrop(ViT(a.img, a.patch, a.embed_dim, a.depth, a.heads, 0.0), Head(a.embed_dim, a.out_dim, a.hidden, a.bottleneck))
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    reg = [q for n, q in student.named_parameters() if q.requires_grad and not (n.endswith('.bias') or q.ndim == 1)]
    noreg = [q for n, q in student.named_parameters() if q.requires_grad and (n.endswith('.bias') or q.ndim == 1)]
    opt = torch.optim.AdamW([{'params': reg}, {'params': noreg, 'weight_decay': 0.0}], lr=5e-4, weight_decay=0.04)
    center = torch.zeros(1, a.out_dim)
    ncrops = 2 + a.local_crops
    crops = [torch.randn(a.batch, 3, a.global_size, a.global_size) for _ in range(2)]
    crops += [torch.randn(a.batch, 3, a.local_size, a.local_size) for _ in range(a.local_crops)]
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            t_out = teacher(crops[:2])
        s_out = student(crops)
        loss = dino_loss(s_out, t_out, center, ncrops)
        with torch.no_grad():
            center = center * 0.9 + t_out.mean(dim=0, keepdim=True) * 0.1
        opt.zero_grad()
        loss.backward()
        for q in student.parameters():
            if q.grad is not None:
                coef = 3.0 / (q.grad.norm(2) + 1e-6)
                if coef < 1:
                    q.grad.mul_(coef)
        opt.step()
        with torch.no_grad():
            for q, k in zip(student.parameters(), teacher.parameters()):
                k.mul_(0.996).add_(0.004 * q.detach())
        loss.item()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({'images_per_s': a.batch / med, 'step_ms': med * 1000, 'steps': a.steps, 'threads': a.threads, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
