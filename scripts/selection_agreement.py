"""How often does the selection split tell the same story as the test split? (issue 12)

Every choice in issue 12 is made on the selection split (a fixed 10 % of the training part:
36 examples on Diabetes, 144 on digits) and the bars are read on test. This reads every
paired comparison already in ``results/`` — a method key against the baseline with the same
θ_0 and batches, on the seeds both have — and asks, row by row, whether selection and test
agree on the sign of the paired mean difference and on the issue's "beats" verdict (lower
mean, ≥ 70 % paired wins). Reads result files only:

    python scripts/selection_agreement.py             # the per-row summary
    python scripts/selection_agreement.py --list      # every comparison behind it

A comparison's baseline is the folder's own (``baseline`` plus the method key's check
suffix, e.g. ``baseline_check0.5``); where a folder has none, the full-length baseline of
the folders in REFERENCE_FOLDERS that holds the row (same steps and lr only). A folder's
``baseline`` whose lr differs from the reference's (``results/lr-half``) is a method there.
Runs without a selection error (the reproduction, before the four-way split) are skipped.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from recipe_verdict import verdict

from adaloss.bench.failures import failure
from adaloss.bench.results import final_error, load_results
from adaloss.bench.tables import render_table

REFERENCE_FOLDERS = ("recipe-confirm", "noise-screen", "noise-generality")
CHECK_SUFFIX = re.compile(r"_(check|traincheck)[0-9.]+$")
MIN_SEEDS = 3
TIE = 1e-6  # errors are stored from float32: equal counts can differ by ~1e-9


@dataclass(frozen=True)
class Comparison:
    folder: str
    task: str
    model: str
    method: str
    baseline: str  # folder/key of the reference
    selection: dict  # recipe_verdict.verdict on selection error
    test: dict


def _runs(path: Path) -> dict[int, dict]:
    return {int(r["seed"]): r for r in load_results(path)} if path.is_dir() else {}


def _errors(runs: dict[int, dict], split: str) -> dict[int, float]:
    return {s: math.nan if failure(r) else final_error(r, split) for s, r in runs.items()}


def _setting(runs: dict[int, dict]) -> tuple:
    config = next(iter(runs.values()))["config"]
    return config.get("steps"), config.get("lr")


def _has_selection(runs: dict[int, dict]) -> bool:
    return all("selection_error" in (r.get("final") or {}) for r in runs.values())


def _baseline_for(row: Path, key: str, runs: dict, reference_folders) -> Path | None:
    """The baseline folder ``key``'s runs are paired with on ``row``, or None."""
    suffix = CHECK_SUFFIX.search(key)
    own = row / ("baseline" + (suffix.group(0) if suffix else ""))
    if own.is_dir() and own.name != key:
        return own
    results, (task, model) = row.parents[2], row.parts[-2:]
    steps, lr = _setting(runs)
    for folder in reference_folders:
        base_dir = results / folder / task / model / "baseline"
        if base_dir == row / key or not base_dir.is_dir():
            continue
        base = _runs(base_dir)
        if not _has_selection(base) or _setting(base)[0] != steps:
            continue
        if key.startswith("baseline"):  # a plain run: paired only if its lr differs
            return base_dir if _setting(base)[1] != lr else None
        return base_dir if _setting(base)[1] == lr else None
    return None


def comparisons(results: Path, reference_folders=REFERENCE_FOLDERS) -> list[Comparison]:
    """Every (method key, baseline) pair under ``results`` with at least MIN_SEEDS shared seeds."""
    out = []
    for row in sorted(p for p in results.glob("*/*/*") if p.is_dir()):
        folder, task, model = row.relative_to(results).parts
        for key_dir in sorted(p for p in row.iterdir() if p.is_dir()):
            runs = _runs(key_dir)
            if not runs or not _has_selection(runs):
                continue
            base_dir = _baseline_for(row, key_dir.name, runs, reference_folders)
            if base_dir is None:
                continue
            base = _runs(base_dir)
            pair = {
                split: verdict(_errors(runs, split), _errors(base, split))
                for split in ("selection", "test")
            }
            if pair["test"]["seeds"] >= MIN_SEEDS:
                name = f"{base_dir.parts[-4]}/{base_dir.name}"
                out.append(Comparison(folder, task, model, key_dir.name, name, *pair.values()))
    return out


def _sign(x: float) -> int:
    """-1, 0 or 1; a mean difference within TIE of zero is a tie (equal errors, up to rounding)."""
    return 0 if not math.isfinite(x) or abs(x) <= TIE else (1 if x > 0 else -1)


def summary(items: list[Comparison]) -> list[list[str]]:
    """Per row: comparisons, sign agreement, Pearson r of the two Δs, "beats" agreement."""
    rows = []
    for task, model in sorted({(c.task, c.model) for c in items}):
        cs = [c for c in items if (c.task, c.model) == (task, model)]
        sel = [c.selection["mean_diff"] for c in cs]
        tst = [c.test["mean_diff"] for c in cs]
        signed = [(a, b) for a, b in zip(sel, tst, strict=True) if _sign(a) and _sign(b)]
        agree = sum(_sign(a) == _sign(b) for a, b in signed)
        finite = [
            (a, b) for a, b in zip(sel, tst, strict=True) if math.isfinite(a) and math.isfinite(b)
        ]
        r = (
            statistics.correlation([a for a, _ in finite], [b for _, b in finite])
            if len(finite) > 2
            else math.nan
        )
        beats_sel = sum(c.selection["beats"] for c in cs)
        beats_test = sum(c.test["beats"] for c in cs)
        beats_both = sum(c.selection["beats"] and c.test["beats"] for c in cs)
        ties = sum(_sign(a) == 0 for a in sel)
        rows.append([
            task, model, str(len(cs)), f"{agree}/{len(signed)}", str(ties), f"{r:+.2f}",
            str(beats_sel), str(beats_test), str(beats_both),
        ])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the results folder")
    parser.add_argument("--list", action="store_true", help="print every comparison")
    args = parser.parse_args()
    items = comparisons(Path(args.results))
    if args.list:
        lines = [
            [
                c.folder, c.task, c.model, c.method, c.baseline, str(c.test["seeds"]),
                f"{c.selection['mean_diff']:+.4f} ({c.selection['wins']}/{c.selection['seeds']})",
                f"{c.test['mean_diff']:+.4f} ({c.test['wins']}/{c.test['seeds']})",
            ]
            for c in items
        ]  # fmt: skip
        header = ["folder", "task", "model", "method", "baseline", "seeds", "selection Δ", "test Δ"]
        print("\n".join(render_table(header, lines, markdown=True, n_left=5)))
        print()
    header = ["task", "model", "comparisons", "same sign", "selection ties", "r",
              "beats on selection", "beats on test", "beats on both"]  # fmt: skip
    print("\n".join(render_table(header, summary(items), markdown=True, n_left=2)))


if __name__ == "__main__":
    main()
