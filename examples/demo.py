"""`make demo`: plain training versus AdaLFL on scikit-learn's digits, side by side.

The same MLP (the paper's two hidden layers of 1000 units), the same seed, the
same batches: once with SGD on cross-entropy, once with adaloss.MetaLossOptimizer
(the default recipe: a learned loss warm-started at cross-entropy's gradient that then
adapts after every step, under the divergence guard).
Prints the test error of each, the relative difference and the wall time.
"""

from __future__ import annotations

import argparse
import time

import timm
import torch

import adaloss
import adaloss.integrations.timm  # noqa: F401  (registers adaloss_mlp)
from adaloss.bench.batching import batches, full_batch
from adaloss.bench.datasets import load_dataset


def train(data, method: str, steps: int, seed: int) -> tuple[float, float]:
    """Train one model; return (test error rate, seconds)."""
    task = adaloss.Classification(data.num_outputs)
    torch.manual_seed(seed)
    model = timm.create_model("adaloss_mlp", num_classes=data.num_outputs, in_features=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_batches = batches(data.train, 128, seed=seed)
    val_batches = batches(data.val, 128, seed=seed + 1)
    started = time.perf_counter()
    if method == "plain":
        for _ in range(steps):
            x, y = next(train_batches)
            optimizer.zero_grad()
            task.loss(model(x), y).backward()
            optimizer.step()
    else:
        torch.manual_seed(10_000 + seed)
        opt = adaloss.MetaLossOptimizer(model, optimizer, task)  # the default recipe
        opt.initialize()  # the warm start: about a second, no offline phase
        for _ in range(steps):
            opt.step(*next(train_batches), *next(val_batches))
    seconds = time.perf_counter() - started
    x_test, y_test = full_batch(data.test)
    with torch.no_grad():
        error = float(task.error(model.eval()(x_test), y_test))
    return error, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_dataset("digits", seed=args.seed)
    print(f"digits: {len(data.train)} train / {len(data.val)} validation / {len(data.test)} test")
    plain_error, plain_time = train(data, "plain", args.steps, args.seed)
    print(f"plain SGD + cross-entropy : test error {plain_error:.4f}  ({plain_time:.1f} s)")
    ada_error, ada_time = train(data, "adalfl", args.steps, args.seed)
    print(f"AdaLFL (MetaLossOptimizer): test error {ada_error:.4f}  ({ada_time:.1f} s)")
    change = (ada_error - plain_error) / max(plain_error, 1e-12)
    print(
        f"relative difference       : {change:+.1%} test error; {ada_time / plain_time:.1f}x time"
    )


if __name__ == "__main__":
    main()
