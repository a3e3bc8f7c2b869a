"""bench/timing.py — the one timer the PyTorch sides of bench/ share: the
median seconds per call over `trials` timings of `iters` calls, after `warmup`
calls, like kbl.clock.time on the kbl side. `sync` (torch.cuda.synchronize)
makes device work count."""
import statistics
import time


def timeit(fn, warmup=3, trials=5, iters=10, sync=None):
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times)
