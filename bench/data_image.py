"""bench/data_image.py — torchvision's side of bench/data_image.lua: images per
second decoded and batched from a PNG folder by ImageFolder (grayscale,
ToTensor) and a shuffled DataLoader of batch 256, for each worker count in
WORKERS; prints one JSON line {workers: images/s (best of TRIALS epochs)}."""
import json
import os
import sys
import time

import torch
import torchvision
from torchvision import transforms

root = sys.argv[1]
workers = [int(w) for w in os.environ.get("WORKERS", "0,1,2,3,4").split(",")]
trials = int(os.environ.get("TRIALS", "2"))
torch.set_num_threads(1)
tf = transforms.Compose([transforms.Grayscale(1), transforms.ToTensor()])
ds = torchvision.datasets.ImageFolder(root, transform=tf)
out = {}
for w in workers:
    best = 0.0
    for t in range(trials):
        g = torch.Generator()
        g.manual_seed(t)
        dl = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, num_workers=w, generator=g,
                                         persistent_workers=False)
        t0 = time.perf_counter()
        n = 0
        for x, y in dl:
            n += x.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    out[w] = best
    print(f"torchvision ImageFolder, {w} workers: {best:.0f} images/s", file=sys.stderr, flush=True)
print(json.dumps({"torchvision": out, "torch": torch.__version__, "torchvision_version": torchvision.__version__}))
