"""scripts/outside_data_probe.py: the README's loop on outside data, and its failure rule."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from outside_data_probe import _paired_cell, _plain_cell  # noqa: E402


def test_a_run_blown_up_while_finite_counts_as_failed_and_is_left_out():
    plain = [1.0, 2.0, 3.0]
    # seed 0 blew up (finite, > 100 × plain's median 2.0), seed 2 is NaN: both failed
    assert _paired_cell([250.0, 1.0, math.nan], plain) == "-1 (1 / 0), 2 failed"
    assert _paired_cell([0.5, 2.5, 3.0], plain) == "+0 (1 / 1)"
    assert _plain_cell([1.0, math.nan, 3.0]) == "2 ± 1.4, 1 failed"  # mean ± std of the kept


def test_the_script_runs_the_three_methods_end_to_end():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "outside_data_probe.py"), "--sets", "iris,linnerud",
         "--seeds", "1", "--epochs", "1"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| iris", "| linnerud"))]
    assert len(rows) == 2 and all(row.count("|") == 7 for row in rows)


def test_on_regression_the_default_is_monotone_share_and_network_the_default_before_it():
    """Every column but *default* names its loss on a regression, so commands run before
    session 28 still run what they measured; on a classification both are the default."""
    from outside_data_probe import train

    def ends(name: str) -> list[float]:
        return [train(name, 0, m, 0.01, 1) for m in ("default", "monotone-share", "network")]

    default, pair, network = ends("linnerud")
    assert default == pair and network != default
    default, pair, network = ends("iris")
    assert default == pair == network
