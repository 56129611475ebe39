"""scripts/outside_data_probe.py: the README's loop on outside data, and its failure rule."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import torch

import adaloss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from outside_data_probe import _paired_cell, _plain_cell  # noqa: E402

COLUMNS = ("default", "monotone-share", "network")


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


def test_every_column_but_default_is_its_configuration_of_before_session_28():
    """So commands run before session 28 still run what they measured: on a regression the
    default is *monotone-share* and *network* the loss before it (their runs differ); on a
    classification the default learns the step length and the other columns do not."""
    from outside_data_probe import options_for, train

    default, pair, network = (train("linnerud", 0, m, 0.01, 1) for m in COLUMNS)
    assert default == pair and network != default
    model = torch.nn.Linear(4, 3)

    def built(method: str, task: adaloss.Task) -> tuple:
        opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters()), task,
                                        **options_for(method, task))  # fmt: skip
        return type(opt.loss).__name__, opt.recipe.learn_lr, opt.recipe.check_share

    iris = adaloss.Classification(3)
    assert built("default", iris) == ("LossNetwork", True, None)
    assert built("network", iris) == built("monotone-share", iris) == ("LossNetwork", False, None)
    assert built("learn-lr", iris)[1] is True and built("guard1", iris)[1] is False
    assert built("monotone-share", adaloss.Regression(3)) == ("MonotoneLossNetwork", False, 0.5)
    # session 29's columns: today's default (on regression its pair) with a's own rate
    assert built("slr0.1", adaloss.Regression(3)) == ("MonotoneLossNetwork", True, 0.5)
    assert built("slr0.01", iris) == ("LossNetwork", True, None)
    assert options_for("slr0.01", iris)["step_length_meta_lr"] == 0.01
