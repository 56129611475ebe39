"""How hard does the learned loss pull, by error size, against the squared error? (issue 12)

A learned regression loss can help two ways: by pulling harder everywhere (a longer step,
which a larger lr gives too) or by pulling less on large errors than on small ones (a robust
shape, which helps when some training targets are wrong). Each result file's ``loss_grid``
holds M_ϕ(0.5 + e, 0.5) on a grid of errors e in [−0.5, 0.5]; this prints, per row, the
median over the seeds of the learned loss's slope divided by the squared error's (2e), in
three bands of |e|, at the first and last snapshot, and the ratio of the large band to the
small one (below 1: flatter on large errors than the squared error, i.e. robust):

    python scripts/loss_slope_profile.py --folder results/noise-screen
    python scripts/loss_slope_profile.py --folder results/recipe-confirm --key adalfl_default
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from adaloss.bench.results import load_results
from adaloss.bench.tables import render_table

BANDS = ((0.02, 0.1), (0.1, 0.3), (0.3, 0.5))


def relative_slopes(errors: list[float], loss: list[float]) -> list[float]:
    """Mean |dM/de| / |2e| of one grid curve in each band of |e| (finite differences)."""
    out = []
    for lo, hi in BANDS:
        ratios = []
        for i in range(1, len(errors)):
            e = (errors[i] + errors[i - 1]) / 2
            if lo <= abs(e) <= hi:
                slope = (loss[i] - loss[i - 1]) / (errors[i] - errors[i - 1])
                ratios.append(abs(slope) / (2 * abs(e)))
        out.append(statistics.mean(ratios))
    return out


def profile_rows(folder: Path, key: str, model: str = "adaloss_mlp") -> tuple[list, list]:
    """Header and one row per (regression row, snapshot): median relative slope per band."""
    header = ["task", "seeds", "step", *[f"|e| {lo}–{hi}" for lo, hi in BANDS], "large / small"]
    rows = []
    for path in sorted(folder.glob(f"*/{model}/{key}")):
        runs = [r for r in load_results(path) if r.get("loss_grid")]
        runs = [r for r in runs if r["loss_grid"]["x_label"] == "Error"]  # regression only
        if not runs:
            continue
        for snapshot in (0, -1):
            profiles = [
                relative_slopes(r["loss_grid"]["x"], r["loss_grid"]["curves"]["loss"][snapshot])
                for r in runs
            ]
            bands = [statistics.median(col) for col in zip(*profiles, strict=True)]
            robust = statistics.median(p[-1] / p[0] for p in profiles)
            step = runs[0]["loss_grid"]["steps"][snapshot]
            rows.append([path.parts[-3], str(len(runs)), f"{step:,}",
                         *[f"{b:.2f}" for b in bands], f"{robust:.2f}"])  # fmt: skip
    return header, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/noise-screen")
    parser.add_argument("--key", default="adalfl_default", help="method key (result folder)")
    args = parser.parse_args()
    header, rows = profile_rows(Path(args.folder), args.key)
    print("\n".join(render_table(header, rows, markdown=True, n_left=3)))


if __name__ == "__main__":
    main()
