"""Where is the learned loss's minimum? How far it drifts from the target during a run (issue 12).

A regression learned loss M_ϕ(f, y) whose minimum is not at f = y pushes every prediction
toward an offset: with a 32-example validation split, an offset is the easiest thing for the
meta-objective to fit. Each result file's ``loss_grid`` holds M_ϕ(0.5 + e, 0.5) on a grid of
errors e every 1/10 of the run; this prints, per row, the median and the largest |e at the
minimum| over the seeds, at each snapshot:

    python scripts/loss_minimum_drift.py              # the default in results/recipe-confirm
    python scripts/loss_minimum_drift.py --folder results/anchored-screen \
        --key adalfl_default_anchored

A minimum at the grid's edge (|e| = 0.5) means "at least that far".
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from adaloss.bench.results import load_results
from adaloss.bench.tables import render_table

REGRESSION_ROWS = ["diabetes", "crime", "california"]


def minimum_offsets(record: dict) -> tuple[list[int], list[float]]:
    """(snapshot steps, |error at the learned loss's minimum| at each) of one run."""
    grid = record["loss_grid"]
    errors, curves = grid["x"], grid["curves"]["loss"]
    offsets = [abs(errors[min(range(len(c)), key=c.__getitem__)]) for c in curves]
    return list(grid["steps"]), offsets


def drift_rows(folder: Path, key: str, model: str = "adaloss_mlp") -> tuple[list, list]:
    """Header and one row per regression task: 'median / largest' at every snapshot."""
    header, rows = None, []
    for task in REGRESSION_ROWS:
        path = folder / task / model / key
        runs = [minimum_offsets(r) for r in load_results(path)] if path.is_dir() else []
        runs = [r for r in runs if r[0] == runs[0][0]] if runs else []  # same snapshots
        if not runs:
            continue
        steps = runs[0][0]
        header = header or ["task", "seeds", *[f"step {s:,}" for s in steps]]
        cells = [
            f"{statistics.median(col):.2f} / {max(col):.2f}"
            for col in zip(*(offsets for _, offsets in runs), strict=True)
        ]
        rows.append([task, str(len(runs)), *cells])
    return header or ["task", "seeds"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/recipe-confirm")
    parser.add_argument("--key", default="adalfl_default", help="method key (result folder)")
    args = parser.parse_args()
    header, rows = drift_rows(Path(args.folder), args.key)
    print("\n".join(render_table(header, rows, markdown=True, n_left=2)))


if __name__ == "__main__":
    main()
