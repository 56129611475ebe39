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

from adaloss.bench import runner
from adaloss.bench.config import DEFAULT_META_LR, RunConfig

PRINT_AT = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--method", default="ml3", choices=("ml3", "adalfl"))
    parser.add_argument("--meta-lr", type=float, default=DEFAULT_META_LR)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    config = RunConfig(
        "digits", "adaloss_mlp", args.method, args.seed, args.steps, lr=0.01, meta_lr=args.meta_lr
    )
    run = runner.prepare_run(config)  # the same θ_0, ϕ_0 and offline phase as `adaloss run`
    model, opt, train, val = run.model, run.opt, run.train, run.val
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
