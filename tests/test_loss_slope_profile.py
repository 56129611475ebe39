"""scripts/loss_slope_profile.py measures the learned loss's pull against the squared error's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from loss_slope_profile import profile_rows, relative_slopes  # noqa: E402

ERRORS = [i / 100 - 0.5 for i in range(101)]


def huber(e: float, delta: float = 0.1) -> float:
    """Twice the Huber loss: slope 2e up to |e| = delta, 2·delta beyond."""
    return e * e if abs(e) <= delta else 2 * delta * abs(e) - delta * delta


def test_the_squared_error_is_one_everywhere_and_a_scaled_one_its_scale():
    assert relative_slopes(ERRORS, [e * e for e in ERRORS]) == pytest.approx([1, 1, 1], rel=1e-9)
    assert relative_slopes(ERRORS, [3 * e * e for e in ERRORS]) == pytest.approx([3, 3, 3])


def test_a_robust_loss_is_flatter_on_large_errors():
    small, middle, large = relative_slopes(ERRORS, [huber(e) for e in ERRORS])
    assert small == pytest.approx(1.0, abs=0.05)
    assert large == pytest.approx(0.2 / (2 * 0.4), rel=0.1)  # 2δ over a mean 2|e| of ~0.8
    assert large < middle < small


def test_rows_read_the_first_and_last_snapshot_of_every_seed(tmp_path):
    folder = tmp_path / "california-noise0.2" / "adaloss_mlp" / "adalfl_default"
    folder.mkdir(parents=True)
    for seed, scale in enumerate([1.0, 2.0, 4.0]):
        curves = [[e * e for e in ERRORS], [scale * huber(e) for e in ERRORS]]
        grid = {"x_label": "Error", "x": ERRORS, "curves": {"loss": curves}, "steps": [0, 500]}
        (folder / f"seed{seed}.json").write_text(json.dumps(
            {"task": "california-noise0.2", "model": "adaloss_mlp", "method": "adalfl_default",
             "seed": seed, "loss_grid": grid}))  # fmt: skip
    header, rows = profile_rows(tmp_path, "adalfl_default")
    assert header[:3] == ["task", "seeds", "step"] and header[-1] == "large / small"
    assert [row[:3] for row in rows] == [["california-noise0.2", "3", "0"],
                                         ["california-noise0.2", "3", "500"]]  # fmt: skip
    assert rows[0][3:] == ["1.00", "1.00", "1.00", "1.00"]
    assert float(rows[1][3]) == pytest.approx(2.0, abs=0.1)  # the median seed's scale
    assert float(rows[1][-1]) < 0.3  # flatter on large errors, whatever the scale
