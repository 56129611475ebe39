"""The README's examples run: the quick-start loop and the `make demo` script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_trains(capsys):
    error = load("quickstart").main(["--epochs", "3"])
    out = capsys.readouterr().out
    assert "epoch 3: learned loss" in out and "test error rate" in out
    assert error < 0.3  # 10 classes: chance is 0.9


@pytest.mark.slow
def test_demo_runs_briefly(capsys):
    load("demo").main(["--steps", "20"])
    out = capsys.readouterr().out
    assert "plain SGD + cross-entropy" in out and "AdaLFL (MetaLossOptimizer)" in out
    assert "relative difference" in out
