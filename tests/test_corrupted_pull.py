"""scripts/corrupted_pull.py: how much of the learned loss's force falls on corrupted examples."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from adaloss.bench.cli import main as adaloss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from corrupted_pull import pull_by_group, pull_rows  # noqa: E402


def test_a_loss_that_halves_the_corrupted_pull_is_measured_as_half():
    g_task = torch.tensor([[1.0], [-2.0], [3.0], [4.0]])
    corrupted = torch.tensor([False, False, True, True])
    same = pull_by_group(g_task, g_task, corrupted)
    assert same == pytest.approx((7 / 10, 7 / 10, 1.0))
    halved = g_task * torch.tensor([[1.0], [1.0], [0.5], [0.5]])
    share_t, share_m, weight = pull_by_group(halved, g_task, corrupted)
    assert (share_t, share_m, weight) == pytest.approx((0.7, 3.5 / 6.5, 0.5))


def test_a_fresh_warm_start_weighs_corrupted_examples_as_the_task_loss(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "adalfl", "--label-noise", "0.3",
            "--seeds", "1", "--steps", "2", "--quiet", "--threads", "1", "--save-states",
            "--out", str(out)]  # fmt: skip
    assert adaloss(args) == 0
    header, rows = pull_rows(out, "adalfl_default_monotone_share0.5")  # the default on regression
    assert [row[:3] for row in rows] == [["diabetes-noise0.3", "adaloss_mlp", "1"]]
    corrupted, share_t, share_m, weight = (float(v) for v in rows[0][3:])
    assert corrupted == pytest.approx(0.3, abs=0.01)
    assert share_m == pytest.approx(share_t, abs=0.02)  # ϕ still at the task loss's fit
    assert weight == pytest.approx(1.0, abs=0.1)
