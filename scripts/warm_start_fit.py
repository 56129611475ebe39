"""How closely the warm start makes each learned loss's slope match the task loss's (issue 12).

    python scripts/warm_start_fit.py [--losses network,network8,taylor2,taylor3] [--seeds 3]

For each loss of ``adaloss run --loss`` and each seed's ϕ_0, fits ϕ with ``adaloss.warm_start``
(regression, and 10-class classification) and prints the relative mismatch it ends at
(``adaloss.warmstart.gradient_mismatch``: 0 is a perfect fit). The fit depends on ϕ_0.
"""

from __future__ import annotations

import argparse

import torch

import adaloss
from adaloss.bench.config import LOSSES
from adaloss.warmstart import warm_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="network,network8,taylor2,taylor3")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for name in args.losses.split(","):
        cells = []
        for task in (adaloss.Regression(), adaloss.Classification(10)):
            fits = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                fits.append(f"{warm_start(LOSSES[name](), task):.4f}")
            cells.append(f"{task}: {' '.join(fits)}")
        print(f"{name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
