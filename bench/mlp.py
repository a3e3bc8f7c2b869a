"""bench/mlp.py — the PyTorch side of bench/mlp.lua: the same workloads, printed
as one JSON object of seconds per call, each at the faster of 1 and 2 threads.
Run by bench/mlp.lua; not a runtime dependency of kbl."""
import json

import torch
import torch.nn.functional as F

from timing import THREADS, timeit


def workloads():
    torch.manual_seed(0)
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    x = torch.randn(128, 784)
    y = torch.randint(0, 10, (128,))
    sizes = [(784, 256), (256, 256), (256, 10)]
    params = []
    for i, o in sizes:
        w = (torch.randn(o, i) * (2.0 / i) ** 0.5).requires_grad_()
        bias = torch.zeros(o, requires_grad=True)
        params += [w, bias]
    opt = torch.optim.Adam(params, lr=1e-3)

    def forward_backward():
        h = x
        for k in range(3):
            h = F.linear(h, params[2 * k], params[2 * k + 1])
            if k < 2:
                h = F.relu(h)
        loss = F.cross_entropy(h, y)
        for p in params:
            p.grad = None
        loss.backward()

    def train_step():
        forward_backward()
        opt.step()

    return {"sgemm_1024": lambda: torch.mm(a, b), "mlp_fwd_bwd": forward_backward, "mlp_train_step": train_step}


def main():
    best = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        for name, fn in workloads().items():
            t = timeit(fn, iters=5 if name == "sgemm_1024" else 20)
            if name not in best or t < best[name][0]:
                best[name] = (t, threads)
    print(json.dumps({k: {"seconds": v[0], "threads": v[1]} for k, v in best.items()}))


if __name__ == "__main__":
    main()
