"""How closely the warm start makes each learned loss's slope match the task loss's (issue 12).

    python scripts/warm_start_fit.py [--losses network,network8,taylor2,taylor3] [--seeds 3]
    python scripts/warm_start_fit.py --losses network --range=-981.5,1092.5 [--raw]
    python scripts/warm_start_fit.py --rows [--seeds 10]   # needs ADALOSS_DATA

For each loss of ``adaloss run --loss`` and each seed's ϕ_0, fits ϕ with ``adaloss.warm_start``
(regression, and 10-class classification) and prints the relative mismatch it ends at
(``adaloss.warmstart.gradient_mismatch``: 0 is a perfect fit). The fit depends on ϕ_0.
``--range`` fits regression over that value range (default: [−0.5, 1.5], targets in [0, 1]);
``--raw`` keeps the loss's input normalization at the identity, as the warm start did before
it set one from the range (the network then sees targets in the hundreds as they are).
``--rows`` prints, instead, the normalization (c, s) the default recipe's warm start sets on
each regression benchmark row, clean and with 20 % corrupted targets, per seed: (0, 1), the
identity, means the committed results of that row are what today's code computes.
"""

from __future__ import annotations

import argparse

import torch

import adaloss
from adaloss.bench.config import LOSSES
from adaloss.warmstart import DEFAULT_RANGE, warm_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="network,network8,taylor2,taylor3")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--range", default=None, help="LO,HI for regression")
    parser.add_argument("--raw", action="store_true", help="no input normalization")
    parser.add_argument("--rows", action="store_true", help="(c, s) on the benchmark rows")
    args = parser.parse_args()
    if args.rows:
        print_row_normalizations(args.seeds)
        return
    value_range = tuple(map(float, args.range.split(","))) if args.range else DEFAULT_RANGE
    for name in args.losses.split(","):
        cells = []
        for task in (adaloss.Regression(), adaloss.Classification(10)):
            fits = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                loss = LOSSES[name]()
                if args.raw:
                    loss.normalize_inputs = lambda value_range: None  # stays the identity
                fits.append(f"{warm_start(loss, task, value_range):.4f}")
            cells.append(f"{task}: {' '.join(fits)}")
        print(f"{name}: " + "; ".join(cells))


def print_row_normalizations(seeds: int) -> None:
    from adaloss.bench.config import RunConfig
    from adaloss.bench.runner import prepare_run

    for task in ("crime", "diabetes", "california"):
        for noise in (0.0, 0.2):
            found = set()
            for seed in range(seeds):
                config = RunConfig(task=task, model="adaloss_mlp", method="adalfl", seed=seed,
                                   steps=1, recipe="default", label_noise=noise)  # fmt: skip
                loss = prepare_run(config).opt.loss
                found.add((loss.input_center, loss.input_scale))
            print(f"{task}, {noise:.0%} corrupted, seeds 0-{seeds - 1}: (c, s) in {sorted(found)}")


if __name__ == "__main__":
    main()
