"""What the default recipe costs before its first step, next to 100 plain steps (issue 12).

    python scripts/warm_start_cost.py [--repeats 5] [--threads 1]

For each model (the paper's MLP on digits-sized inputs, for classification and regression,
and LeNet-5 on MNIST-sized inputs, batch 128), times ``MetaLossOptimizer.initialize()`` with
the default recipe (the task-loss warm start; no offline phase) and 100 plain SGD steps of the
same model, interleaved, and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

import adaloss
import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_* models)

MODELS = {
    "MLP, digits (10 classes)": ("adaloss_mlp", dict(in_features=64, num_classes=10), (64,), 10),
    "MLP, regression (1 output)": ("adaloss_mlp", dict(in_features=8, num_classes=1), (8,), 0),
    "LeNet-5, MNIST (10 classes)": ("adaloss_lenet5", dict(num_classes=10), (1, 28, 28), 10),
}


def plain_steps(model, x, y, task, steps: int = 100) -> float:
    base = torch.optim.SGD(model.parameters(), lr=0.01)
    started = time.perf_counter()
    for _ in range(steps):
        base.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()
        base.step()
    return time.perf_counter() - started


def warm_start_time(model, x, y, task) -> float:
    opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.01), task)
    started = time.perf_counter()
    opt.initialize([(x, y)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 128, medians of "
          f"{args.repeats}\n")  # fmt: skip
    print("| model | 100 plain steps (s) | warm start (s) | ratio |")
    print("|---|--:|--:|--:|")
    for name, (arch, kwargs, shape, classes) in MODELS.items():
        torch.manual_seed(0)
        model = timm.create_model(arch, **kwargs)
        x = torch.randn(128, *shape)
        if classes:
            task, y = adaloss.Classification(classes), torch.randint(0, classes, (128,))
        else:
            task, y = adaloss.Regression(1), torch.rand(128, 1)
        plain, warm = [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            plain.append(plain_steps(model, x, y, task))
            warm.append(warm_start_time(model, x, y, task))
        p, w = statistics.median(plain), statistics.median(warm)
        print(f"| {name} | {p:.3f} | {w:.3f} | {w / p:.2f} |")


if __name__ == "__main__":
    main()
