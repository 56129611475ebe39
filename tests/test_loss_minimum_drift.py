"""scripts/loss_minimum_drift.py finds the learned loss's minimum on the recorded grid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from loss_minimum_drift import drift_rows, minimum_offsets  # noqa: E402


def record(seed: int, minima: list[float]) -> dict:
    errors = [i / 10 - 0.5 for i in range(11)]
    curves = [[(e - m) ** 2 for e in errors] for m in minima]
    grid = {"x_label": "Error", "x": errors, "curves": {"loss": curves},
            "steps": [1000 * i for i in range(len(minima))]}  # fmt: skip
    return {"task": "diabetes", "model": "adaloss_mlp", "method": "adalfl", "seed": seed,
            "loss_grid": grid}  # fmt: skip


def test_the_minimum_is_read_where_the_curve_is_lowest():
    steps, offsets = minimum_offsets(record(0, [0.0, -0.2, 0.3]))
    assert steps == [0, 1000, 2000]
    assert offsets == pytest.approx([0.0, 0.2, 0.3])


def test_rows_give_median_and_largest_over_seeds(tmp_path):
    folder = tmp_path / "diabetes" / "adaloss_mlp" / "adalfl_default"
    folder.mkdir(parents=True)
    for seed, minima in enumerate([[0.0, 0.1], [0.0, -0.3], [0.0, 0.2]]):
        (folder / f"seed{seed}.json").write_text(json.dumps(record(seed, minima)))
    header, rows = drift_rows(tmp_path, "adalfl_default")
    assert header == ["task", "seeds", "step 0", "step 1,000"]
    assert rows == [["diabetes", "3", "0.00 / 0.00", "0.20 / 0.30"]]
