"""bench/data.py — the PyTorch side of bench/data.lua: a torch DataLoader over the
Fashion-MNIST training images (60000, read from the same IDX files), shuffled,
batch 128, with the per-sample transforms torchvision's recipe uses: bytes to
float in [0, 1], normalize, random crop 28 with padding 4, random horizontal
flip. Prints one JSON object: batches per second (median and best window) for
num_workers 0 and 2.
Run by bench/data.lua; not a runtime dependency of kbl."""
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

MEAN, STD, PAD = 0.2860, 0.3530, 4


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(directory, name):
    for suffix in ("", ".gz"):
        p = os.path.join(directory, name + suffix)
        if os.path.exists(p):
            return p
    raise SystemExit("missing " + name + " in " + directory)


class FashionMNIST(Dataset):
    """What torchvision.transforms would do per sample (torchvision is not
    installed here): ToTensor, Normalize, RandomCrop(28, padding=4),
    RandomHorizontalFlip()."""

    def __init__(self, directory):
        self.x = torch.from_numpy(read_idx(find(directory, "train-images-idx3-ubyte")).copy())
        self.y = torch.from_numpy(read_idx(find(directory, "train-labels-idx1-ubyte")).astype(np.int64))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = self.x[i].unsqueeze(0).float().div_(255)
        img = (img - MEAN) / STD
        img = F.pad(img, (PAD, PAD, PAD, PAD))
        top, left = torch.randint(0, 2 * PAD + 1, (2,)).tolist()
        img = img[:, top:top + 28, left:left + 28]
        if torch.rand(1).item() < 0.5:
            img = img.flip(-1)
        return img, self.y[i]


def rate(loader, window, windows):
    """Median and best batches per second over `windows` windows of `window`."""
    it = iter(loader)
    next(it)  # workers started, first batch made

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(window):
            next_batch()
        rates.append(window / (time.perf_counter() - t0))
    return {"median": statistics.median(rates), "best": max(rates)}


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    windows = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    ds = FashionMNIST(directory)
    torch.manual_seed(0)
    out = {}
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0)
        out["workers_%d" % workers] = rate(loader, window, windows)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
