"""scripts/recipe_mechanism.py pairs runs filed in different folders under one method key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "recipe_mechanism.py"


def write(root: Path, folder: str, key: str, seed: int, selection: float) -> None:
    path = root / folder / "california-noise0.2" / "adaloss_mlp" / key / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"task": "california-noise0.2", "model": "adaloss_mlp", "method": key, "seed": seed,
              "metric": "mse", "final": {"test_error": selection, "selection_error": selection},
              "curve": {"selection_error": [1.0, selection]}}  # fmt: skip
    path.write_text(json.dumps(record))


def run(root: Path, *args: str) -> str:
    cmd = [sys.executable, str(SCRIPT), "--root", str(root), "--noise", *args]
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
