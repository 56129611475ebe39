"""scripts/recipe_mechanism.py pairs runs filed in different folders under one method key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "recipe_mechanism.py"


def write(
    root: Path, folder: str, key: str, seed: int, selection: float,
    row: str = "california-noise0.2", model: str = "adaloss_mlp",
) -> None:  # fmt: skip
    path = root / folder / row / model / key / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"task": row, "model": model, "method": key, "seed": seed,
              "metric": "mse", "final": {"test_error": selection, "selection_error": selection},
              "curve": {"selection_error": [1.0, selection]}}  # fmt: skip
    path.write_text(json.dumps(record))


def run(root: Path, *args: str, rows: str = "--noise") -> str:
    cmd = [sys.executable, str(SCRIPT), "--root", str(root), rows, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def test_noise_rows_are_paired_against_the_chosen_reference(tmp_path):
    for seed, (base, fast, learned) in enumerate([(0.021, 0.020, 0.018), (0.021, 0.019, 0.019)]):
        write(tmp_path, "results/noise-screen", "baseline", seed, base)
        write(tmp_path, "results/noise-lr-check", "baseline", seed, fast)
        write(tmp_path, "results/noise-screen", "adalfl_default", seed, learned)
    row = next(line for line in run(tmp_path, "--columns", "1,2").splitlines()
               if "california" in line)  # fmt: skip
    assert "| 0.0210 (n=2) |" in row and "-0.0015, wins 2/2" in row and "-0.0025, wins 2/2" in row
    row = next(line for line in run(tmp_path, "--reference", "1").splitlines()
               if "california" in line)  # fmt: skip
    assert "0.0210 (n=2) +0.0015, wins 0/2" in row and "| 0.0195 (n=2) |" in row
    assert "0.0185 (n=2) -0.0010, wins 1/2" in row  # one win, one tie


def test_generality_rows_find_the_control_under_twice_each_tasks_lr(tmp_path):
    folder = "results/noise-generality"
    rows = [
        ("crime-noise0.2", "adaloss_mlp", "baseline_lr0.002"),
        ("digits-noise0.4", "adaloss_logistic", "baseline_lr0.02"),
    ]
    for row, model, fast_key in rows:
        write(tmp_path, folder, "baseline", 0, 0.030, row, model)
        write(tmp_path, folder, fast_key, 0, 0.020, row, model)
        write(tmp_path, folder, "baseline_lr0.2", 0, 0.001, row, model)  # not twice the lr
    lines = run(tmp_path, rows="--generality").splitlines()
    for task in ("crime", "digits"):
        row = next(line for line in lines if task in line)
        assert "0.0200 (n=1) -0.0100, wins 1/1" in row and "0.0010" not in row


def test_handovers_lists_the_runs_that_handed_over_and_when(tmp_path):
    for seed, at in enumerate([None, 4200, None, 1400]):
        write(tmp_path, "results/noise-default", "adalfl_default", seed, 0.02)
        path = tmp_path / "results/noise-default/california-noise0.2/adaloss_mlp"
        record_path = path / "adalfl_default" / f"seed{seed}.json"
        record = json.loads(record_path.read_text())
        record["final"]["handed_over_at"] = at
        record_path.write_text(json.dumps(record))
        write(tmp_path, "results/noise-screen", "baseline", seed, 0.021)
    row = next(line for line in run(tmp_path, "--handovers", "--columns", "4").splitlines()
               if "california" in line)  # fmt: skip
    assert "| 0 of 4 |" in row  # the baseline never hands over
    assert "| 2 of 4: 4,200 (seed 1), 1,400 (seed 3) |" in row
