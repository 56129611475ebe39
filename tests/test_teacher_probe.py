"""scripts/teacher_probe.py: the selection draw is not the held-out one, and the paired summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import adaloss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import teacher_probe  # noqa: E402


def test_the_selection_split_is_a_draw_of_its_own():
    options = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}
    test, _ = teacher_probe.run(None, 5, 0, dict(options), "classification", "test")
    selection, _ = teacher_probe.run(None, 5, 0, dict(options), "classification", "selection")
    again, _ = teacher_probe.run(None, 5, 0, dict(options), "classification", "selection")
    assert selection == again and selection != test


def test_each_method_is_paired_with_plain_training():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "teacher_probe.py"), "3",
         "plain,default-eta1e-4", "--seeds", "2", "--read", "selection"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    plain, method = done.stdout.splitlines()
    assert "selection error" in plain and " std " in plain
    assert "default-eta1e-4" in method and " vs plain " in method and "/" in method


def test_the_columns_of_before_session_28_are_the_default_of_their_time():
    """On regression the default is the monotone pair and ``network`` the default before
    it (their runs differ); on classification the default learns the step length and every
    loss column is the default before session 28, without it."""
    sgd = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    names = ("monotone", "monotone-share", "network")
    default, _ = teacher_probe.run({}, 3, 0, dict(sgd), "regression", "selection")
    ends = [
        teacher_probe.run(teacher_probe.CONFIGS[name], 3, 0, dict(sgd), "regression", "selection")
        for name in names
    ]
    assert [end[0] != default for end in ends] == [True, False, True]
    assert ends[0] != ends[2]  # the two losses differ
    model = torch.nn.Linear(20, 10)

    def built(name: str, task: adaloss.Task) -> tuple:
        options = teacher_probe.options_for(teacher_probe.CONFIGS[name], task)
        opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters()), task, **options)
        return type(opt.loss).__name__, opt.recipe.learn_lr, opt.recipe.check_share

    classification = adaloss.Classification(10)
    assert built("default", classification) == ("LossNetwork", True, None)
    for name in (*names, "keep-fit"):
        assert built(name, classification)[1:] == (False, None), name
    assert built("learn-lr", classification)[1] is True
    assert built("monotone-share", adaloss.Regression(1)) == ("MonotoneLossNetwork", False, 0.5)
    assert built("network", adaloss.Regression(1)) == ("LossNetwork", False, None)
    assert built("slr0.1", adaloss.Regression(1)) == ("MonotoneLossNetwork", True, 0.5)
    assert built("slr0.01", classification) == ("LossNetwork", True, None)
