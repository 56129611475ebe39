"""scripts/recipe_verdict.py applies issue 12's bars as written: a failed run counts and
loses, "clearly worse" is a paired mean above one baseline std, "beats" needs a lower mean
and 70 % paired wins."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from recipe_verdict import verdict  # noqa: E402

BASE = {s: 0.100 + 0.002 * (s % 2) for s in range(10)}  # std ≈ 0.00105


def test_seven_wins_and_a_lower_mean_beat_the_baseline():
    method = {s: BASE[s] - (0.001 if s < 7 else -0.0005) for s in range(10)}
    v = verdict(method, BASE)
    assert (v["seeds"], v["failed"], v["wins"]) == (10, 0, 7)
    assert v["beats"] and not v["clearly_worse"]


def test_six_wins_do_not_beat_even_with_a_lower_mean():
    method = {s: BASE[s] - (0.002 if s < 6 else -0.0001) for s in range(10)}
    v = verdict(method, BASE)
    assert v["mean_diff"] < 0 and v["wins"] == 6 and not v["beats"]


def test_clearly_worse_is_one_baseline_std_above_zero():
    same = verdict(BASE, BASE)
    std = same["base_std"]
    assert std == pytest.approx(0.00105, rel=0.01) and not same["clearly_worse"]
    just_inside = verdict({s: BASE[s] + 0.99 * std for s in BASE}, BASE)
    just_outside = verdict({s: BASE[s] + 1.01 * std for s in BASE}, BASE)
    assert not just_inside["clearly_worse"] and just_outside["clearly_worse"]


def test_a_failed_run_counts_loses_and_is_left_out_of_the_mean():
    method = {s: BASE[s] - 0.001 for s in range(10)}
    method[3] = math.nan
    v = verdict(method, BASE)
    assert v["failed"] == 1 and v["wins"] == 9
    assert v["mean_diff"] == pytest.approx(-0.001)
    failed_base = verdict({s: BASE[s] + 0.001 for s in range(10)}, {**BASE, 4: math.nan})
    assert failed_base["wins"] == 1 and failed_base["failed"] == 0  # seed 4: the baseline lost


def test_one_baseline_seed_leaves_clearly_worse_undecided():
    one = verdict({0: BASE[0] + 0.01}, {0: BASE[0]})
    assert one["seeds"] == 1 and math.isnan(one["base_std"])
    assert one["clearly_worse"] is None and not one["beats"]
    assert verdict({0: math.nan}, {0: BASE[0]})["clearly_worse"] is None


def test_the_script_runs_on_the_committed_results():
    """The command BENCHMARKS.md cites runs end to end (it once broke on a helper's signature)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "recipe_verdict.py"),
                           "--root", str(root)], capture_output=True, text=True, timeout=300,
                          cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "beats the baseline on" in done.stdout
