"""What the validation split could tell about the default's harm, read from result files.

Two questions behind BENCHMARKS.md, "Early stopping of the learned loss" (selection error
only; no test error is read):

- *stops*: in which runs, and at which step, the full validation curve
  (``curve.val_error``, every ``eval_every`` steps) first goes ``--patience`` steps without
  a new low — a proxy for what ``adaloss.patience`` watches per step;
- *pick*: keeping whichever of the default's and the baseline's final models has the lower
  final validation error — its paired selection-error difference from the baseline.

    python scripts/validation_signals.py                 # results/recipe-confirm, P = 1,000
    python scripts/validation_signals.py --patience 2000
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from recipe_mechanism import ROWS

from adaloss.bench.results import load_results


def first_stall(steps: list[int], values: list[float], patience: int) -> int | None:
    """The first step at which ``values`` has gone ``patience`` steps without a new low."""
    best, best_step = float("inf"), None
    for step, value in zip(steps, values, strict=True):
        if value < best:
            best, best_step = value, step
        elif step - best_step >= patience:
            return step
    return None


def by_seed(path: Path) -> dict[int, dict]:
    return {int(r["seed"]): r for r in load_results(path)} if path.is_dir() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/recipe-confirm")
    parser.add_argument("--method", default="adalfl_default")
    parser.add_argument("--patience", type=int, default=1000)
    parser.add_argument("--root", default=".", help="repository root")
    args = parser.parse_args()
    for task, model in ROWS:
        row = Path(args.root) / args.folder / task / model
        method, baseline = by_seed(row / args.method), by_seed(row / "baseline")
        seeds = sorted(set(method) & set(baseline))
        if not seeds:
            continue
        stalls = [
            first_stall(method[s]["curve"]["step"], method[s]["curve"]["val_error"], args.patience)
            for s in seeds
        ]
        picks, picked_baseline = [], 0
        for s in seeds:
            own, base = method[s]["final"], baseline[s]["final"]
            chosen = own if own["val_error"] <= base["val_error"] else base
            picked_baseline += chosen is base
            picks.append(chosen["selection_error"] - base["selection_error"])
        stopped = [s for s in stalls if s is not None]
        span = f"steps {min(stopped)}–{max(stopped)}" if stopped else "none"
        print(
            f"{task} {model}: {len(stopped)}/{len(seeds)} runs stall ({span}); "
            f"pick by validation: selection {statistics.mean(picks):+.4f}, "
            f"wins {sum(d < 0 for d in picks)}/{len(seeds)}, baseline picked {picked_baseline}"
        )


if __name__ == "__main__":
    main()
