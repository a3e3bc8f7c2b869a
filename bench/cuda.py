"""bench/cuda.py — the PyTorch side of bench/cuda.lua on the same GPU: an MLP
784-256-256-10 and a CNN (conv3x3 1->32, relu, maxpool2, conv3x3 32->64, relu,
maxpool2, dense 3136->128, relu, dense 128->10) training step at batch 128 with
Adam, and sgemm 4096^3, each timed between torch.cuda.synchronize() calls.
Prints one JSON object of seconds per call, or {"skipped": reason} without a
GPU. TF32 is off, as kbl's float32 on CUDA is full float32. Run by
bench/cuda.lua; not a runtime dependency of kbl."""
import json

import torch
import torch.nn.functional as F

from timing import timeit


def param(*shape, fan_in=None, dev="cuda"):
    if fan_in is None:
        return torch.zeros(*shape, device=dev, requires_grad=True)
    return (torch.randn(*shape, device=dev) * (2.0 / fan_in) ** 0.5).requires_grad_()


def mlp_step():
    x = torch.randn(128, 784, device="cuda")
    y = torch.randint(0, 10, (128,), device="cuda")
    ps = []
    for i, o in [(784, 256), (256, 256), (256, 10)]:
        ps += [param(o, i, fan_in=i), param(o)]
    opt = torch.optim.Adam(ps, lr=1e-3)

    def step():
        h = x
        for k in range(3):
            h = F.linear(h, ps[2 * k], ps[2 * k + 1])
            if k < 2:
                h = F.relu(h)
        loss = F.cross_entropy(h, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def cnn_step():
    x = torch.randn(128, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (128,), device="cuda")
    c1w, c1b = param(32, 1, 3, 3, fan_in=9), param(32)
    c2w, c2b = param(64, 32, 3, 3, fan_in=288), param(64)
    d1w, d1b = param(128, 3136, fan_in=3136), param(128)
    d2w, d2b = param(10, 128, fan_in=128), param(10)
    ps = [c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b]
    opt = torch.optim.Adam(ps, lr=1e-3)

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(x, c1w, c1b, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2w, c2b, padding=1)), 2)
        h = F.relu(F.linear(h.flatten(1), d1w, d1b))
        loss = F.cross_entropy(F.linear(h, d2w, d2b), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main():
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch.cuda.is_available() is false"}))
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    out = {
        "sgemm_4096": timeit(lambda: torch.mm(a, b), warmup=5, iters=10, sync=torch.cuda.synchronize),
        "mlp_train_step": timeit(mlp_step(), warmup=5, iters=20, sync=torch.cuda.synchronize),
        "cnn_train_step": timeit(cnn_step(), warmup=5, iters=20, sync=torch.cuda.synchronize),
        "device": torch.cuda.get_device_name(0),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
