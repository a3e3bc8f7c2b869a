"""bench/conv.py — the PyTorch side of bench/conv.lua: the same workloads, printed
as one JSON object of seconds per call (each at the faster of 1 and 2 threads)
and the process's peak RSS. Run by bench/conv.lua; not a runtime dependency of kbl.

  --part conv   conv2d 3x3 32->64, padding 1, on 128x32x14x14: forward, forward+backward
  --part step   one training step (forward, cross entropy, backward, Adam) of the CNN
                conv3x3(1->32)-relu-maxpool2-conv3x3(32->64)-relu-maxpool2-
                dense(3136->128)-relu-dense(128->10) at batch 128 on 28x28 inputs
"""
import json
import sys

import torch
import torch.nn.functional as F

from timing import THREADS, timeit


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def conv_workloads():
    torch.manual_seed(0)
    x = torch.randn(128, 32, 14, 14, requires_grad=True)
    w = (torch.randn(64, 32, 3, 3) * 0.05).requires_grad_()
    b = torch.zeros(64, requires_grad=True)

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, b, padding=1)

    def fwd_bwd():
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, padding=1).sum().backward()

    return {"conv2d_fwd": fwd, "conv2d_fwd_bwd": fwd_bwd}


def step_workloads():
    torch.manual_seed(0)
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))

    def param(*shape, fan_in):
        return (torch.randn(*shape) * (2.0 / fan_in) ** 0.5).requires_grad_()

    params = [
        param(32, 1, 3, 3, fan_in=9), torch.zeros(32, requires_grad=True),
        param(64, 32, 3, 3, fan_in=288), torch.zeros(64, requires_grad=True),
        param(128, 3136, fan_in=3136), torch.zeros(128, requires_grad=True),
        param(10, 128, fan_in=128), torch.zeros(10, requires_grad=True),
    ]
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = params
        h = F.max_pool2d(F.relu(F.conv2d(x, c1w, c1b, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2w, c2b, padding=1)), 2)
        h = F.relu(F.linear(h.reshape(128, 3136), d1w, d1b))
        loss = F.cross_entropy(F.linear(h, d2w, d2b), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"cnn_train_step": step}


def main():
    part = sys.argv[sys.argv.index("--part") + 1] if "--part" in sys.argv else "conv"
    make = conv_workloads if part == "conv" else step_workloads
    rss_before = peak_rss_mb()
    best = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        for name, fn in make().items():
            t = timeit(fn, iters=10)
            if name not in best or t < best[name][0]:
                best[name] = (t, threads)
    out = {k: {"seconds": v[0], "threads": v[1]} for k, v in best.items()}
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_before_mb"] = rss_before
    print(json.dumps(out))


if __name__ == "__main__":
    main()
