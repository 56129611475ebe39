"""scripts/handover_screen.py: the hand-over and final-pick rules read from check curves."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from handover_screen import handover_step, picked, switched  # noqa: E402

STEPS = [0, 200, 400, 600, 800]


def _record(check: list[float], selection: float = 0.02, start: float = 0.5) -> dict:
    return {
        "metric": "mse",
        "mean_predictor_error": 1.0,
        "final": {"check_error": check[-1], "selection_error": selection, "test_error": 0.1},
        "curve": {"step": STEPS, "check_error": check, "selection_error": [start, selection]},
    }


def test_a_hand_over_needs_consecutive_points_above_the_baseline():
    base = _record([1, 0.5, 0.4, 0.3, 0.3])
    assert handover_step(_record([1, 0.6, 0.5, 0.4, 0.4]), base, 3) == 600
    assert handover_step(_record([1, 0.6, 0.5, 0.3, 0.4]), base, 3) is None  # a tie resets
    assert handover_step(_record([1, 0.6, 0.5, 0.2, 0.4]), base, 2) == 400
    assert handover_step(_record([1, 0.4, math.nan, math.nan, 0.2]), base, 2) == 600  # NaN: above
    stopped = _record([1, 0.6])
    stopped["curve"]["step"] = STEPS[:2]  # diverged after step 200: the rest counts as above
    assert handover_step(stopped, base, 3) == 600


def test_the_final_pick_keeps_the_lower_check_error_and_the_method_on_ties():
    own, base = _record([1, 0.3]), _record([1, 0.4])
    assert picked(own, base) is own and picked(base, own) is own
    assert picked(_record([1, 0.4]), base)["final"]["check_error"] == 0.4


def test_with_ties_to_plain_the_method_must_be_strictly_ahead():
    base = _record([1, 0.5, 0.4, 0.3, 0.3])
    level = _record([1, 0.5, 0.4, 0.3, 0.3])  # ties all along, step 0 included
    assert handover_step(level, base, 3) is None
    assert handover_step(level, base, 3, ties="plain") == 600  # step 0 is not a check
    assert handover_step(level, base, 4, ties="plain") == 800
    assert handover_step(_record([1, 0.5, 0.3, 0.3, 0.3]), base, 3, ties="plain") is None
    assert picked(level, base, ties="plain") is base and picked(level, base) is level
    ahead = _record([1, 0.2])
    assert picked(ahead, base, ties="plain") is ahead


def _write(root: Path, key: str, seed: int, record: dict) -> None:
    path = root / "results/check-screen/diabetes/adaloss_mlp" / key / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "diabetes", "model": "adaloss_mlp", "seed": seed,
                                "method": key, **record}))  # fmt: skip


def test_the_screen_applies_both_rules_and_the_verdict(tmp_path):
    # seed 0: the method drifts above on check (hand-over) but ends lower there (the pick keeps
    # it, +0.010); seed 1: the method stays below on check and is better (−0.002) under both
    _write(tmp_path, "baseline_check0.5", 0, _record([1, 0.3, 0.3, 0.3, 0.3], 0.020))
    _write(tmp_path, "adalfl_default_check0.5", 0, _record([1, 0.4, 0.4, 0.4, 0.2], 0.030))
    _write(tmp_path, "baseline_check0.5", 1, _record([1, 0.3, 0.3, 0.3, 0.3], 0.022))
    _write(tmp_path, "adalfl_default_check0.5", 1, _record([1, 0.2, 0.2, 0.2, 0.2], 0.020))
    cmd = [sys.executable, str(SCRIPTS / "handover_screen.py"), "--root", str(tmp_path),
           "--points", "3"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    row = "| diabetes adaloss_mlp | 0.0210 | 0.0250 +0.0040, 1/2 | 0.0200 -0.0010, 1/2 | "
    assert row + "0.0250 +0.0040, 1/2 | 0.0200 -0.0010, 1/2 | 600 / — |" in out
    assert "hand-over: passes (lower mean than the baseline on 1 rows)" in out
    assert "final pick: fails: diabetes adaloss_mlp: clearly worse (+0.0040 > std 0.0014)" in out
    assert "both: passes (lower mean than the baseline on 1 rows)" in out


def test_the_screen_reads_only_the_seeds_and_the_curve_it_is_told(tmp_path):
    base, own = _record([1, 0.3, 0.3, 0.3, 0.3], 0.020), _record([1, 0.4, 0.4, 0.4, 0.2], 0.030)
    own["curve"]["check_loss"] = [1, 0.2, 0.2, 0.2, 0.2]  # ahead on the loss all along
    base["curve"]["check_loss"] = [1, 0.3, 0.3, 0.3, 0.3]
    for seed in (0, 1):
        _write(tmp_path, "baseline_check0.5", seed, base)
        _write(tmp_path, "adalfl_default_check0.5", seed, own)
    cmd = [sys.executable, str(SCRIPTS / "handover_screen.py"), "--root", str(tmp_path),
           "--points", "3", "--seeds", "1-1"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "| 0.0300 +0.0100, 0/1 | 0.0200 +0.0000, 0/1 | 600 |" in out  # hands over on error
    out = subprocess.run([*cmd, "--on", "check_loss"], capture_output=True, text=True).stdout
    assert "| 0.0300 +0.0100, 0/1 | — |" in out  # on the loss it never does: all keep it


def test_the_bars_read_test_error_of_the_final_each_rule_keeps(tmp_path):
    # seed 0 hands over (its test error becomes the baseline's), seed 1 keeps its own
    for seed, (mine, theirs) in enumerate([(0.30, 0.10), (0.05, 0.20)]):
        base, own = _record([1, 0.3, 0.3, 0.3, 0.3]), _record([1, 0.4, 0.4, 0.4, 0.2])
        if seed == 1:
            own["curve"]["check_error"] = [1, 0.2, 0.2, 0.2, 0.2]
        base["final"]["test_error"], own["final"]["test_error"] = theirs, mine
        _write(tmp_path, "baseline_check0.5", seed, base)
        _write(tmp_path, "adalfl_default_check0.5", seed, own)
    cmd = [sys.executable, str(SCRIPTS / "handover_screen.py"), "--root", str(tmp_path),
           "--points", "3"]  # fmt: skip
    assert "bars" not in subprocess.run(cmd, capture_output=True, text=True).stdout
    out = subprocess.run([*cmd, "--bars"], capture_output=True, text=True, check=True).stdout
    method, handover, pick, both = out.split("### ")[1:]
    assert "| +0.0250 (wins 1/2) | 0.0707 |" in method  # (+0.20 − 0.15) / 2
    assert "| -0.0750 (wins 1/2) | 0.0707 |" in handover  # seed 0 is the baseline's: 0, −0.15
    assert "| +0.0250 (wins 1/2) | 0.0707 |" in pick  # ends lower on check: keeps its own
    assert "| -0.0750 (wins 1/2) | 0.0707 |" in both  # the hand-over's, then the pick's
    label = "hand-over (adalfl_default_check0.5, on check_error, ties: model) vs baseline_check0.5"
    assert label in out


def test_switching_takes_a_hand_over_back_once_the_method_leads_again():
    # Plain training leads at points 1-2, the method at points 3-4: with points=2 the run
    # switches to plain at point 2 and back at point 4, and ends holding the method's run.
    steps = [0, 1, 2, 3, 4]
    own = {"curve": {"step": steps, "val_error": [0.5, 0.4, 0.4, 0.1, 0.1]}}
    base = {"curve": {"step": steps, "val_error": [0.5, 0.3, 0.3, 0.2, 0.2]}}
    held, switches = switched(own, base, 2, "val_error")
    assert held is own and switches == 2
    held, switches = switched(own, base, 3, "val_error")  # never 3 points in a row
    assert held is own and switches == 0
    # plain leads at points 1-2 (a switch), then ties: a tie is no lead, so plain stays
    trailing = {"curve": {"step": steps, "val_error": [0.5, 0.4, 0.4, 0.3, 0.3]}}
    tie = {"curve": {"step": steps, "val_error": [0.5, 0.3, 0.3, 0.3, 0.3]}}
    assert switched(trailing, tie, 2, "val_error") == (tie, 1)
    diverged = {"curve": {"step": steps[:2], "val_error": [0.5, 0.4]}}
    assert switched(diverged, base, 2, "val_error") == (base, 1)
