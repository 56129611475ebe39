"""Which test examples make up a regression run's final test MSE.

Trains one (task, method, seed) exactly as ``adaloss run`` does (same θ_0, ϕ_0, batch
streams and offline phase, through ``runner.prepare_run``), then prints the final test
MSE, the share of it that the worst examples carry, and for each of them its prediction,
target and largest standardized feature, next to the training split's largest. Used for
BENCHMARKS.md (California AdaLFL seed 5: a finite blow-up of the test MSE).
"""

from __future__ import annotations

import argparse
import warnings

import torch

from adaloss.bench import runner
from adaloss.bench.config import DEFAULT_META_LR, RunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="california")
    parser.add_argument("--method", default="adalfl", choices=("baseline", "ml3", "adalfl"))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--meta-lr", type=float, default=DEFAULT_META_LR)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--worst", type=int, default=5, help="how many examples to list")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    config = RunConfig(  # lr 0.001: the paper's (and `adaloss run`'s) for regression
        args.task, "adaloss_mlp", args.method, args.seed, args.steps, lr=0.001,
        meta_lr=args.meta_lr,
    )  # fmt: skip
    run = runner.prepare_run(config)
    if run.data.kind != "regression":
        raise SystemExit(f"--task must be a regression task, got {args.task!r}")
    for _ in range(args.steps):
        if not run.step():
            raise SystemExit("a non-finite value stopped a step: the run diverged")

    model = run.model.eval()
    test = run.data.test
    with torch.no_grad():
        pred = model(test.x)
    squared = (pred - test.y).pow(2).mean(dim=1)  # per example, over outputs
    total = float(squared.sum())
    print(f"test MSE {total / len(squared):.4f} over {len(squared)} examples")
    train_max = run.data.train.x.abs().max(dim=0).values
    order = squared.argsort(descending=True)
    for rank, i in enumerate(order[: args.worst].tolist(), 1):
        z = test.x[i].abs()
        j = int(z.argmax())
        print(f"#{rank} example {i}: squared error {float(squared[i]):.4g} "
              f"({float(squared[i]) / total:.1%} of the sum), prediction "
              f"{pred[i].tolist()}, target {test.y[i].tolist()}, largest |z| {float(z[j]):.1f} "
              f"(feature {j}; training max {float(train_max[j]):.1f})")  # fmt: skip
    rest = squared[order[args.worst :]]
    print(f"test MSE without these {args.worst}: {float(rest.mean()):.4f}")


if __name__ == "__main__":
    main()
