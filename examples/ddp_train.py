"""Data-parallel training with a learned loss, under torchrun on CPUs or GPUs.

    torchrun --nproc_per_node=2 examples/ddp_train.py

Each rank wraps the model in ``DistributedDataParallel`` as usual and hands it to
``MetaLossOptimizer``; every rank then steps on its own shard of each global batch and the
optimizer averages what the whole batch needs (base gradient, validation gradient,
meta-gradient), so θ and ϕ stay identical on all ranks, exactly as one process on the
concatenated batch would have them. Runs on CPUs (gloo) and, unchanged, on GPUs (nccl,
one per rank). The data is synthetic (a fixed random teacher network): nothing downloaded.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import adaloss


def synthetic(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """10-class data labelled by one fixed random teacher; the same on every rank."""
    teacher = torch.randn(20, 10, generator=torch.Generator().manual_seed(1234))
    x = torch.randn(n, 20, generator=torch.Generator().manual_seed(seed))
    return x, (x @ teacher).argmax(dim=1)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="global: split over ranks")
    parser.add_argument("--save", default=None, help="rank 0 writes a checkpoint here")
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of {world} ranks")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    torch.manual_seed(0)  # DDP broadcasts rank 0's θ and adaloss rank 0's ϕ anyway
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    model = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = adaloss.MetaLossOptimizer(model, optimizer, adaloss.Classification(10))

    x_train, y_train = synthetic(4096, seed=0)
    x_val, y_val = synthetic(1024, seed=1)
    x_test, y_test = synthetic(2048, seed=2)
    shard = args.batch_size // world
    g = torch.Generator().manual_seed(1)  # the same batch order on every rank
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x_train), (args.batch_size,), generator=g)
        vidx = torch.randint(0, len(x_val), (args.batch_size,), generator=g)
        mine, vmine = (i[rank * shard : (rank + 1) * shard] for i in (idx, vidx))
        result = opt.step(
            x_train[mine].to(device),
            y_train[mine].to(device),
            x_val[vmine].to(device),
            y_val[vmine].to(device),
        )
        if rank == 0 and (step % 50 == 0 or step == args.steps):
            print(
                f"step {step}: learned loss {float(result.learned_loss):.4f}, "
                f"validation cross-entropy {float(result.task_loss):.4f}"
            )

    # θ and ϕ are the same on every rank: the largest difference to rank 0's is 0.
    flat = torch.cat([p.detach().reshape(-1) for p in [*model.parameters(), *opt.meta_params]])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    gap = (flat - reference).abs().max()
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    with torch.no_grad():
        error = float(adaloss.Classification(10).error(model.module(x_test.to(device)), y_test))
    if rank == 0:
        print(f"{world} ranks, global batch {args.batch_size}: test error rate {error:.3f}")
        print(f"largest difference of θ and ϕ between ranks: {float(gap):.1e}")
        if args.save:
            torch.save({"model": model.module.state_dict(), "opt": opt.state_dict()}, args.save)
    dist.barrier()  # no rank tears its connections down while another still uses them
    dist.destroy_process_group()
    return error


if __name__ == "__main__":
    main()
