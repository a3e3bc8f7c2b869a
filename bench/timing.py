"""bench/timing.py — the one timer the PyTorch sides of bench/ share: the
median seconds per call over `trials` timings of `iters` calls, after `warmup`
calls, like bench/timing.lua on the kbl side, and the thread counts to try.
`sync` (torch.cuda.synchronize) makes device work count. BENCH_CLOCK=cpu times
in CPU seconds of the process, at one thread only (for a busy machine)."""
import os
import statistics
import time

CPU = os.environ.get("BENCH_CLOCK") == "cpu"
THREADS = (1,) if CPU else (1, 2)
_clock = time.process_time if CPU else time.perf_counter


def timeit(fn, warmup=3, trials=5, iters=10, sync=None):
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(trials):
        t0 = _clock()
        for _ in range(iters):
            fn()
        if sync:
            sync()
        times.append((_clock() - t0) / iters)
    return statistics.median(times)
