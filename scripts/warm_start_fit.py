"""How closely the warm start makes each learned loss's slope match the task loss's (issue 12).

    python scripts/warm_start_fit.py [--losses network,network8,taylor2,taylor3] [--seeds 3]
    python scripts/warm_start_fit.py --losses network --range=-981.5,1092.5 [--raw]

For each loss of ``adaloss run --loss`` and each seed's ϕ_0, fits ϕ with ``adaloss.warm_start``
(regression, and 10-class classification) and prints the relative mismatch it ends at
(``adaloss.warmstart.gradient_mismatch``: 0 is a perfect fit). The fit depends on ϕ_0.
``--range`` fits regression over that value range (default: [−0.5, 1.5], targets in [0, 1]);
``--raw`` keeps the loss's input normalization at the identity, as the warm start did before
it set one from the range (the network then sees targets in the hundreds as they are).
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
