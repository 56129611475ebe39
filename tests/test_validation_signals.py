"""scripts/validation_signals.py: the stall proxy and the pick by validation error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from validation_signals import first_stall  # noqa: E402


def test_a_stall_is_patience_steps_without_a_new_low():
    steps = [0, 200, 400, 600, 800, 1000, 1200]
    assert first_stall(steps, [5, 4, 3, 2, 1, 0.5, 0.4], 400) is None
    assert first_stall(steps, [5, 4, 4, 3.9, 4, 3.9, 4], 400) == 1000  # a tie is no new low
    assert first_stall(steps, [5, 4, 4, 4.5, 5, 4, 4], 400) == 600


def _write(root: Path, key: str, seed: int, val: float, selection: float, curve: list[float]):
    path = root / "results/recipe-confirm/diabetes/adaloss_mlp" / key / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"task": "diabetes", "model": "adaloss_mlp", "method": key, "seed": seed,
              "final": {"val_error": val, "selection_error": selection},
              "curve": {"step": [0, 1000, 2000], "val_error": curve}}  # fmt: skip
    path.write_text(json.dumps(record))


def test_the_pick_keeps_the_lower_validation_error_and_pairs_it_with_the_baseline(tmp_path):
    _write(tmp_path, "baseline", 0, val=0.03, selection=0.020, curve=[1, 0.5, 0.4])
    _write(tmp_path, "adalfl_default", 0, val=0.02, selection=0.025, curve=[1, 0.5, 0.6])
    _write(tmp_path, "baseline", 1, val=0.03, selection=0.020, curve=[1, 0.5, 0.4])
    _write(tmp_path, "adalfl_default", 1, val=0.04, selection=0.010, curve=[1, 0.5, 0.4])
    cmd = [sys.executable, str(SCRIPTS / "validation_signals.py"), "--root", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    # seed 0 keeps the learned loss's model (+0.005), seed 1 the baseline's (0): mean +0.0025
    assert "diabetes adaloss_mlp: 1/2 runs stall (steps 2000–2000)" in out
    assert "selection +0.0025, wins 0/2, baseline picked 1" in out
