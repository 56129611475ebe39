"""Does a method meet issue 12's bars against the baseline, row by row? Reads result files only.

    python scripts/recipe_verdict.py                  # the default recipe in results/recipe-confirm
    python scripts/recipe_verdict.py --method metalr  # the same bars for Meta-LR

The bars, per (task, model) row, on the seeds both the method and the baseline have:

- *fails*: runs of the method that diverged or collapsed (``adaloss.bench.failures``);
- *never clearly worse*: the paired mean test-error difference (method − baseline) is at
  most one sample standard deviation of the baseline's test error above zero (undecided
  with one baseline seed: there is no spread to compare with);
- *beats*: lower mean test error than the baseline and at least 70 % paired wins
  (7/10 at ten seeds; a failed run loses).

Test error is what the bars are about, so it is what this reads; selection error (what
choices are made on) is printed beside it and decides nothing here.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from recipe_mechanism import ROWS, errors_by_seed

from adaloss.bench.tables import render_table

WIN_SHARE = 0.7  # the issue's 7/10


def verdict(method: dict, baseline: dict) -> dict:
    """The bars for one row, from {seed: final error (NaN: failed)} of method and baseline."""
    seeds = sorted(set(method) & set(baseline))
    failed = sum(not math.isfinite(method[s]) for s in seeds)
    both = [s for s in seeds if math.isfinite(method[s]) and math.isfinite(baseline[s])]
    diffs = [method[s] - baseline[s] for s in both]
    wins = sum(  # a failed run loses, on either side
        math.isfinite(method[s]) and not method[s] >= baseline[s] for s in seeds
    )
    finite_base = [baseline[s] for s in seeds if math.isfinite(baseline[s])]
    base_std = statistics.stdev(finite_base) if len(finite_base) > 1 else math.nan
    mean_diff = statistics.fmean(diffs) if diffs else math.nan
    # One baseline seed has no spread to compare with: undecided (None), not "worse at 0".
    worse = None if math.isnan(base_std) else not math.isfinite(mean_diff) or mean_diff > base_std
    beats = bool(diffs) and mean_diff < 0 and wins >= WIN_SHARE * len(seeds)
    return {
        "seeds": len(seeds),
        "failed": failed,
        "mean_diff": mean_diff,
        "base_std": base_std,
        "wins": wins,
        "clearly_worse": worse,
        "beats": beats,
    }


def report(rows: list[tuple[str, str, dict]], label: str) -> str:
    """The bars table and its summary line.

    ``rows``: (task, model, {split: (method, baseline)}) with {seed: final error} for the
    selection and test splits."""
    lines, beaten, worse, failed, runs = [], 0, 0, 0, 0
    for task, model, errors in rows:
        v, sel = verdict(*errors["test"]), verdict(*errors["selection"])
        if not v["seeds"]:
            lines.append([task, model, "0", "-", "-", "-", "-", "-", "-"])
            continue
        runs += v["seeds"]
        failed += v["failed"]
        beaten += v["beats"]
        worse += bool(v["clearly_worse"])
        lines.append([
            task, model, str(v["seeds"]), str(v["failed"]),
            f"{sel['mean_diff']:+.4f} (wins {sel['wins']}/{sel['seeds']})",
            f"{v['mean_diff']:+.4f} (wins {v['wins']}/{v['seeds']})",
            f"{v['base_std']:.4f}",
            {True: "yes", False: "no", None: "n/a (one seed)"}[v["clearly_worse"]],
            "yes" if v["beats"] else "no",
        ])  # fmt: skip
    header = ["task", "model", "seeds", "failed", "selection Δ", "test Δ", "baseline test std",
              "clearly worse", "beats"]  # fmt: skip
    table = "\n".join(render_table(header, lines, markdown=True, n_left=2))
    return table + (
        f"\n\n{label}: failed {failed} of {runs} runs; clearly worse on {worse} rows; "
        f"beats the baseline on {beaten} of {len(rows)} rows."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/recipe-confirm")
    parser.add_argument(
        "--method", default="adalfl_default", help="method key (result folder name)"
    )
    parser.add_argument("--root", default=".", help="repository root")
    args = parser.parse_args()
    root = Path(args.root)
    rows = []
    for task, model in ROWS:
        errors = {
            split: (
                errors_by_seed(root, args.folder, args.method, task, model, split),
                errors_by_seed(root, args.folder, "baseline", task, model, split),
            )
            for split in ("selection", "test")
        }
        rows.append((task, model, errors))
    print(report(rows, f"{args.method} vs baseline in {args.folder}"))


if __name__ == "__main__":
    main()
