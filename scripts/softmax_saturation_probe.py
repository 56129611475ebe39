"""Watch the logits of digits + MLP in the first steps after the offline phase (Algorithm 1).

Builds the same θ_0, ϕ_0 and batch streams as ``adaloss run --task digits --model
adaloss_mlp`` for one seed, runs the offline phase at the paper's settings, then prints,
at a few steps of training with the learned loss, the largest |logit|, the mean top
softmax probability and which classes the batch is assigned to. Used for BENCHMARKS.md
(why digits + MLP collapses to chance); run with ``--seed 1`` for a collapsing seed.
"""

from __future__ import annotations

import argparse
import warnings

import torch

import adaloss
from adaloss.bench import runner
from adaloss.bench.datasets import batches, load_dataset

PRINT_AT = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--method", default="ml3", choices=("ml3", "adalfl"))
    parser.add_argument("--meta-lr", type=float, default=runner.DEFAULT_META_LR)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    data = load_dataset("digits", None, seed=args.seed)
    task = adaloss.Classification(data.num_outputs)
    torch.manual_seed(args.seed)
    config = runner.RunConfig("digits", "adaloss_mlp", args.method, args.seed, args.steps)
    model = runner._make_model(config, data).train()
    base = torch.optim.SGD(model.parameters(), lr=0.01)
    val_batch = min(128, len(data.val))
    torch.manual_seed(10_000 + args.seed)
    opt = adaloss.MetaLossOptimizer(
        model, base, task, loss=adaloss.LossNetwork(), meta_lr=args.meta_lr,
        online=args.method == "adalfl",
    )  # fmt: skip
    opt.initialize(
        batches(data.train, 128, seed=20_000 + args.seed),
        batches(data.val, val_batch, seed=30_000 + args.seed),
        steps=runner.DEFAULT_INIT_STEPS,
        meta_lr=1e-3,
    )

    train = batches(data.train, 128, seed=args.seed)
    val = batches(data.val, val_batch, seed=args.seed + 1)
    for step in range(args.steps + 1):
        x, y = next(train)
        if step in PRINT_AT:
            with torch.no_grad():
                out = model(x)
            top = out.softmax(-1).max(-1).values
            print(f"step {step}: max |logit| {float(out.abs().max()):.3g}, "
                  f"mean top probability {float(top.mean()):.4f}, "
                  f"classes predicted {out.argmax(-1).unique().tolist()}, "
                  f"batch error {float((out.argmax(-1) != y).float().mean()):.3f}")  # fmt: skip
        if step < args.steps:
            opt.step(x, y, *next(val))


if __name__ == "__main__":
    main()
