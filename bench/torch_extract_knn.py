#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- extract-knn` (bench/extract_knn.ts).

Extraction: PIL decode -> resize shorter side to 256 (bicubic) -> centre crop 224 -> /255 -> ImageNet normalise
(torchvision's eval transform written with PIL + numpy: Debian ships no torchvision), batched, through a random
ViT-S/14 (bench/torch_vit.py) at 224; timed end to end (images/s including decoding).
k-NN: the official weighted k-NN on the memory bank written by the TS side (raw little-endian float32/int32 files):
L2-normalised features, chunked mm, one topk(max k), exp(sim/T) votes, top-1/top-5 per k (dinov2's formulation).
Prints one JSON line. Normally run by extract_knn.ts:
  python3 bench/torch_extract_knn.py --images DIR --knn-dir DIR --bank N --queries M --dim D --classes C
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_vit import ViT  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def eval_transform(path, resize=256, crop=224):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = resize, int(resize * h / w)
    else:
        nw, nh = int(resize * w / h), resize
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - crop) / 2.0)), int(round((nh - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    a = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def bench_extract(folder, batch):
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    model = ViT(224, 14, 384, 12, 6).eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))  # warm-up
        t0 = time.perf_counter()
        feats = []
        for s in range(0, len(files), batch):
            x = torch.stack([eval_transform(f) for f in files[s : s + batch]])
            feats.append(model(x))
        dt = time.perf_counter() - t0
    return {"images": len(files), "seconds": dt, "images_per_s": len(files) / dt}


def knn(train, train_labels, test, test_labels, ks, T, num_classes, chunk):
    train = torch.nn.functional.normalize(train, dim=1).t().contiguous()
    test = torch.nn.functional.normalize(test, dim=1)
    max_k = max(ks)
    top1 = {k: 0 for k in ks}
    top5 = {k: 0 for k in ks}
    for s in range(0, test.shape[0], chunk):
        q = test[s : s + chunk]
        y = test_labels[s : s + chunk]
        sims, idx = torch.mm(q, train).topk(max_k, largest=True, sorted=True)
        neigh = train_labels[idx]
        w = (sims / T).exp()
        onehot = torch.nn.functional.one_hot(neigh, num_classes).float()
        for k in ks:
            probs = (onehot[:, :k, :] * w[:, :k, None]).sum(1)
            pred = probs.topk(min(5, k), dim=1).indices
            correct = pred.eq(y[:, None])
            top1[k] += correct[:, 0].sum().item()
            top5[k] += correct.sum().item()
    n = test.shape[0]
    return {str(k): {"top1": 100.0 * top1[k] / n, "top5": 100.0 * top5[k] / n} for k in ks}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--knn-dir")
    p.add_argument("--bank", type=int, default=60000)
    p.add_argument("--queries", type=int, default=10000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--ks", default="10,20,100,200")
    p.add_argument("--T", type=float, default=0.07)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {"torch": torch.__version__, "threads": a.threads}
    if a.images:
        out["extract"] = bench_extract(a.images, a.batch)
    if a.knn_dir:
        f32 = lambda name, shape: torch.from_numpy(np.fromfile(os.path.join(a.knn_dir, name), dtype="<f4").reshape(shape))
        i64 = lambda name: torch.from_numpy(np.fromfile(os.path.join(a.knn_dir, name), dtype="<i4").astype(np.int64))
        train, test = f32("bank.f32", (a.bank, a.dim)), f32("queries.f32", (a.queries, a.dim))
        ytrain, ytest = i64("bank_labels.i32"), i64("query_labels.i32")
        ks = [int(k) for k in a.ks.split(",")]
        t0 = time.perf_counter()
        res = knn(train, ytrain, test, ytest, ks, a.T, a.classes, a.chunk)
        out["knn"] = {"seconds": time.perf_counter() - t0, "results": res}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
