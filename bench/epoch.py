"""bench/epoch.py — PyTorch side of bench/epoch.lua: one training epoch of the
Fashion-MNIST MLP and CNN of lua/kbl/configs (same layers, Adam 1e-3, batch 128,
55000 training images) on CPU, printed as JSON {model: {seconds, threads}}.
Reads the Debian dataset-fashion-mnist IDX files. Not a kbl dependency."""
import gzip
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DIR = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))


def cnn():
    def stage(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*stage(1, 32), *stage(32, 64), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(128, 10))


def epoch_seconds(make, x, y):
    torch.manual_seed(1)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    perm = torch.randperm(len(x))
    t0 = time.perf_counter()
    for i in range(0, len(x), 128):
        idx_ = perm[i:i + 128]
        loss = F.cross_entropy(model(x[idx_]), y[idx_])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main():
    x = torch.from_numpy(idx(f"{DIR}/train-images-idx3-ubyte.gz")[:55000].astype(np.float32) / 255)
    x = ((x - 0.2860) / 0.3530).unsqueeze(1)
    y = torch.from_numpy(idx(f"{DIR}/train-labels-idx1-ubyte.gz")[:55000].astype(np.int64))
    out = {}
    for name, make in (("mlp", mlp), ("cnn", cnn)):
        if name not in sys.argv[1:] and len(sys.argv) > 1:
            continue
        best = None
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t = epoch_seconds(make, x, y)
            if best is None or t < best[0]:
                best = (t, threads)
        out[name] = {"seconds": best[0], "threads": best[1]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
