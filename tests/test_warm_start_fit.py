"""scripts/warm_start_fit.py: the warm start's fit, per learned loss and task."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "warm_start_fit.py"


def test_a_taylor_loss_fits_regression_exactly_and_classification_not():
    cmd = [sys.executable, str(SCRIPT), "--losses", "taylor2", "--seeds", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    name, cells = out.split(": ", 1)
    regression, classification = (float(c.rsplit(" ", 1)[1]) for c in cells.split("; "))
    assert name == "taylor2" and regression == 0.0  # it starts at the squared error
    assert classification > 0.3  # no polynomial in p reproduces cross-entropy's 1/p slope


def test_unscaled_targets_fit_only_with_the_input_normalization():
    def regression_fit(*extra):
        cmd = [sys.executable, str(SCRIPT), "--losses", "network", "--seeds", "1",
               "--range=-981.5,1092.5", *extra]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return float(out.split("; ")[0].rsplit(" ", 1)[1])

    assert regression_fit("--raw") > 0.3 > 0.01 > regression_fit()


def test_the_regression_rows_get_the_identity_normalization():
    """What keeps the committed default-recipe results of the regression rows reproducible."""
    data = Path(
        os.environ.get("ADALOSS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if not (data / "crime" / "communities.data").exists():
        pytest.skip(f"shared data not found at {data}")
    cmd = [sys.executable, str(SCRIPT), "--rows", "--seeds", "1"]
    env = {**os.environ, "ADALOSS_DATA": str(data), "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 6 and all(line.endswith("(c, s) in [(0.0, 1.0)]") for line in lines)
