"""Where does the default recipe's difference from the baseline come from? (issue 12)

Compares, row by row and seed by seed, runs that live in different result folders under
the same method key (a baseline at twice the learning rate is still ``baseline``), so
``adaloss table`` (one folder, one key per column) cannot put them side by side:

    python scripts/recipe_mechanism.py                      # selection error (choices)
    python scripts/recipe_mechanism.py --split test         # read once, for the report
    python scripts/recipe_mechanism.py --seeds 5 --columns 0,1,2   # seeds 0-4, three columns
    python scripts/recipe_mechanism.py --noise                      # corrupted training targets
    python scripts/recipe_mechanism.py --noise --reference 1        # paired against 2× lr
    python scripts/recipe_mechanism.py --generality                 # the other noisy rows
    python scripts/recipe_mechanism.py --noise --split train        # fit to the training targets
    python scripts/recipe_mechanism.py --noise --handovers          # which runs handed over

Each cell is the mean over the seeds that did not fail (n in brackets, failures counted),
and the paired mean difference from the baseline over the seeds both have.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from adaloss.bench.config import paper_lr
from adaloss.bench.failures import failure
from adaloss.bench.results import SPLITS, final_error, load_results
from adaloss.bench.tables import render_table

ROWS = [
    ("crime", "adaloss_mlp"),
    ("diabetes", "adaloss_mlp"),
    ("california", "adaloss_mlp"),
    ("digits", "adaloss_logistic"),
    ("digits", "adaloss_mlp"),
]
# (column, folder, method key); the first column is the reference of the paired differences.
COLUMNS = [
    ("baseline", "results/recipe-confirm", "baseline"),
    ("baseline, ½ lr", "results/lr-half", "baseline"),
    ("baseline, 2× lr", "results/lr-check", "baseline"),
    ("default (η 1e-3, κ 2)", "results/recipe-confirm", "adalfl_default"),
    ("η 1e-4, κ 2", "results/recipe-confirm", "adalfl_default_eta0.0001"),
    ("η 1e-3, κ 1", "results/recipe-shape", "adalfl_default_guard1"),
    ("Meta-LR", "results/recipe-confirm", "metalr"),
    ("default, H 10", "results/lookahead-screen", "adalfl_default_horizon10"),
    ("default, anchor 1", "results/anchor-screen", "adalfl_default_anchor1"),
    ("default, anchored loss", "results/anchored-screen", "adalfl_default_anchored"),
    ("default, monotone loss", "results/monotone-screen", "adalfl_default_monotone"),
    ("default, patience 1000", "results/patience-screen", "adalfl_default_patience1000"),
    ("patience 1000, frozen", "results/patience-screen", "adalfl_default_patience1000_frozen"),
    ("default, hand-over on validation", "results/auto-handover-screen",
     "adalfl_default_handover5_every200"),
    ("default, ½ validation kept for checks", "results/share-screen", "adalfl_default_share0.5"),
]  # fmt: skip
# The rows with corrupted training targets (``adaloss run --label-noise``) and their columns.
NOISE_ROWS = [("california-noise0.2", "adaloss_mlp"), ("digits-noise0.4", "adaloss_mlp")]
NOISE_COLUMNS = [
    ("baseline", "results/noise-screen", "baseline"),
    ("baseline, 2× lr", "results/noise-lr-check", "baseline"),
    ("default (η 1e-3, κ 2)", "results/noise-screen", "adalfl_default"),
    ("default, monotone loss", "results/noise-screen", "adalfl_default_monotone"),
    ("default with the hand-over (session 22)", "results/noise-default", "adalfl_default"),
]
# The same screen on the other rows (scripts/noise_screen.sh), one folder; a key's
# ``{twice_lr}`` is twice the paper's lr of the row's task, as ``adaloss run --lr`` files it.
GENERALITY_ROWS = [
    ("crime-noise0.2", "adaloss_mlp"),
    ("diabetes-noise0.2", "adaloss_mlp"),
    ("digits-noise0.4", "adaloss_logistic"),
    ("digits-noise0.2", "adaloss_mlp"),
]
GENERALITY_COLUMNS = [
    ("baseline", "results/noise-generality", "baseline"),
    ("baseline, 2× lr", "results/noise-generality", "baseline_lr{twice_lr:g}"),
    ("default (η 1e-3, κ 2)", "results/noise-generality", "adalfl_default"),
    ("default, patience 1000", "results/patience-screen", "adalfl_default_patience1000"),
    ("patience 1000, frozen", "results/patience-screen", "adalfl_default_patience1000_frozen"),
    ("default with the hand-over (session 22)", "results/noise-default", "adalfl_default"),
]


def run_records(
    root: Path, folder: str, key: str, task: str, model: str, seeds: int | None = None
) -> list[dict]:
    """The result records of one key on one row, seeds < ``seeds``."""
    key = key.format(twice_lr=2 * paper_lr(task.split("-noise")[0]))
    path = root / folder / task / model / key
    records = load_results(path) if path.is_dir() else []
    return [r for r in records if seeds is None or int(r["seed"]) < seeds]


def errors_by_seed(
    root: Path, folder: str, key: str, task: str, model: str, split: str, seeds: int | None = None
):
    """{seed: final error, NaN for a failed run} of one key on one row, seeds < ``seeds``."""
    return {
        int(r["seed"]): math.nan if failure(r) else final_error(r, split)
        for r in run_records(root, folder, key, task, model, seeds)
    }


def handovers_cell(
    root: Path, folder: str, key: str, task: str, model: str, seeds: int | None = None
) -> str:
    """Which runs of one key on one row handed over to plain training, and at which step."""
    records = run_records(root, folder, key, task, model, seeds)
    if not records:
        return "-"
    steps = {int(r["seed"]): (r.get("final") or {}).get("handed_over_at") for r in records}
    handed = [s for s in sorted(steps) if steps[s] is not None]
    at = ", ".join(f"{steps[s]:,} (seed {s})" for s in handed)
    return f"{len(handed)} of {len(steps)}" + (f": {at}" if at else "")


def cell(values: dict, reference: dict | None) -> str:
    finite = [v for v in values.values() if math.isfinite(v)]
    if not values:
        return "-"
    failed = len(values) - len(finite)
    text = f"{statistics.fmean(finite):.4f}" if finite else "all failed"
    text += f" (n={len(finite)}" + (f", {failed} failed)" if failed else ")")
    if reference is not None:
        diffs = [values[s] - reference[s] for s in values if s in reference]
        diffs = [d for d in diffs if math.isfinite(d)]
        wins = sum(d < 0 for d in diffs)
        if diffs:
            text += f" {statistics.fmean(diffs):+.4f}, wins {wins}/{len(diffs)}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="selection", choices=SPLITS)
    parser.add_argument("--root", default=".", help="repository root (results/ below it)")
    parser.add_argument("--seeds", type=int, default=None, help="only seeds 0..N-1 (paired sets)")
    parser.add_argument("--columns", default=None,
                        help="column indices, e.g. 1,2 (0: baseline, always)")  # fmt: skip
    parser.add_argument("--reference", type=int, default=0,
                        help="column index the paired differences are taken from")  # fmt: skip
    parser.add_argument("--noise", action="store_true",
                        help="the rows with corrupted training targets")  # fmt: skip
    parser.add_argument("--generality", action="store_true",
                        help="the other rows with corrupted training targets")  # fmt: skip
    parser.add_argument("--handovers", action="store_true",
                        help="which runs handed over, and when, instead of errors")  # fmt: skip
    args = parser.parse_args()
    root = Path(args.root)
    all_rows, all_columns = ROWS, COLUMNS
    if args.noise:
        all_rows, all_columns = NOISE_ROWS, NOISE_COLUMNS
    if args.generality:
        all_rows, all_columns = GENERALITY_ROWS, GENERALITY_COLUMNS
    picked = sorted({0, args.reference, *(int(i) for i in (args.columns or "").split(",") if i)})
    if not args.columns:
        picked = list(range(len(all_columns)))
    if picked[-1] >= len(all_columns) or picked[0] < 0:
        parser.error(f"--columns, --reference: indices 0..{len(all_columns) - 1}")
    columns = [all_columns[i] for i in picked]
    ref = picked.index(args.reference)
    rows = []
    for task, model in all_rows:
        if args.handovers:
            rows.append(
                [task, model, *(handovers_cell(root, f, k, task, model, args.seeds)
                                for _, f, k in columns)]
            )  # fmt: skip
            continue
        cols = [
            errors_by_seed(root, f, k, task, model, args.split, args.seeds) for _, f, k in columns
        ]
        cells = [cell(c, None if i == ref else cols[ref]) for i, c in enumerate(cols)]
        rows.append([task, model, *cells])
    header = ["task", "model", *[name for name, _, _ in columns]]
    print("\n".join(render_table(header, rows, markdown=True, n_left=2)))


if __name__ == "__main__":
    main()
