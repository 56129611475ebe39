"""scripts/teacher_probe.py: the selection draw is not the held-out one, and the paired summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_loss_columns_change_the_recipe_on_regression_only():
    """On regression the default is the monotone pair (session 28) and ``network`` the default
    before it; on classification every loss column runs the default itself."""
    sgd = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    names = ("monotone", "monotone-share", "network")
    for task, differs in (("classification", [False] * 3), ("regression", [True, False, True])):
        default, _ = teacher_probe.run({}, 3, 0, dict(sgd), task, "selection")
        ends = [
            teacher_probe.run(teacher_probe.CONFIGS[name], 3, 0, dict(sgd), task, "selection")[0]
            for name in names
        ]
        assert [end != default for end in ends] == differs, task
    assert ends[0] != ends[2]  # on regression the two losses differ
