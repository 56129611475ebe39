"""DDP step time on 2 CPU ranks (gloo) against 1 process, same global batch (issue 14).

    python scripts/ddp_timing.py [--batch 256] [--steps 30]

Every rank runs with one thread; the single process is timed with one and with two
threads (two ranks use two cores), and with one rank's half batch (the compute of one
rank without communication). Prints the median step time of each, after warm-up.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import adaloss


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))  # fmt: skip


def timed(opt, batch: int, steps: int, warmup: int = 5) -> float:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 784, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    times = []
    for i in range(warmup + steps):
        if dist.is_initialized():
            dist.barrier()
        start = time.perf_counter()
        opt.step(x, y, x, y)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(m: nn.Module) -> adaloss.MetaLossOptimizer:
    return adaloss.MetaLossOptimizer(
        m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9), adaloss.Classification(10)
    )


def _rank(rank: int, world: int, batch: int, steps: int, directory: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(directory, 'rendezvous')}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=300),
    )
    seconds = timed(build(DistributedDataParallel(model())), batch // world, steps)
    if rank == 0:
        with open(os.path.join(directory, "ddp.txt"), "w") as f:
            f.write(str(seconds))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        mp.spawn(_rank, args=(2, args.batch, args.steps, directory), nprocs=2, join=True)
        with open(os.path.join(directory, "ddp.txt")) as f:
            ddp = float(f.read())
    single = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        single[threads] = timed(build(model()), args.batch, args.steps)
    torch.set_num_threads(1)
    half = timed(build(model()), args.batch // 2, args.steps)  # one rank's compute alone
    print(f"global batch {args.batch}, MLP 784-256-256-10, default recipe, forward engine")
    print(f"1 process, 1 thread : {single[1] * 1e3:.1f} ms/step")
    print(f"1 process, 2 threads: {single[2] * 1e3:.1f} ms/step")
    print(
        f"2 ranks (gloo), 1 thread each, batch {args.batch // 2} per rank: {ddp * 1e3:.1f} ms/step"
    )
    print(
        f"1 process, 1 thread, batch {args.batch // 2} (one rank's share): {half * 1e3:.1f} ms/step"
    )
    print(f"ratio 2 ranks / 1 process 1 thread: {ddp / single[1]:.2f}")


if __name__ == "__main__":
    main()
