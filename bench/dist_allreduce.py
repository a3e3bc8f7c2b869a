"""bench/dist_allreduce.py: PyTorch's all-reduce (torch.distributed, gloo, the
CPU backend of DistributedDataParallel) for the sizes given (bytes), float32
sums in place, the median of timed calls after warm-up, as
bench/dist_allreduce.lua times kbl.dist's; rank 0 prints "size_bytes seconds".
Two processes on loopback (127.0.0.1), one thread each.
    python3 bench/dist_allreduce.py 4096 1048576 ..."""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run(rank, world, sizes, port):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:%d' % port, rank=rank, world_size=world)
    for size in sizes:
        t = torch.zeros(size // 4)
        reps = 20 if size >= 1 << 22 else 100
        for _ in range(5):
            dist.all_reduce(t)
        times = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        times.sort()
        if rank == 0:
            print('%d %.9f' % (size, times[reps // 2]), flush=True)
    dist.destroy_process_group()


if __name__ == '__main__':
    sizes = [int(a) for a in sys.argv[1:]]
    port = 29500 + os.getpid() % 1000
    mp.spawn(run, args=(2, sizes, port), nprocs=2, join=True)
