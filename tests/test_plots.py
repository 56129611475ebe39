"""Figures from synthetic benchmark result files (adaloss.bench.plots)."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from adaloss.bench.plots import plot_learning_curves, plot_loss_evolution  # noqa: E402
from adaloss.bench.results import load_results  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = list(range(0, 1001, 50))


def _grid(kind: str) -> dict:
    steps = [0, 250, 500, 750, 1000]
    if kind == "regression":
        x = np.linspace(-0.5, 0.5, 41)
        curves = {"loss": [((1 + s / 500) * x**2 + 0.02 * s / 1000 * x).tolist() for s in steps]}
        return {"x_label": "Error", "x": x.tolist(), "steps": steps, "curves": curves}
    p = np.linspace(0.0, 1.0, 41)
    curves = {
        "y = 1": [(-np.log(p + 1e-2) * (1 + s / 1000)).tolist() for s in steps],
        "y = 0": [(-np.log(1.01 - p) * (1 - s / 2000)).tolist() for s in steps],
    }
    curves["y = 0"][2][5] = None  # a hole in one snapshot
    return {"x_label": "Predicted probability", "x": p.tolist(), "steps": steps, "curves": curves}


def make_results(root: Path) -> Path:
    """2 tasks × 3 methods × 3 seeds; AdaLFL seed 2 on MNIST diverges; 2 loss grids."""
    rng = np.random.default_rng(0)
    tasks = {("diabetes", "mlp", "mse"): 0.04, ("mnist", "lenet5", "error_rate"): 0.01}
    scale = {"baseline": 1.1, "ml3": 1.05, "adalfl": 1.0}
    t = np.asarray(STEPS, dtype=float)
    for (task, model, metric), floor in tasks.items():
        for method, k in scale.items():
            for seed in range(3):
                test = floor * k * (1 + 20 * np.exp(-t / 150)) * (1 + 0.03 * rng.standard_normal())
                train = 0.8 * test
                diverged = task == "mnist" and method == "adalfl" and seed == 2
                test_l, train_l = test.tolist(), train.tolist()
                if diverged:
                    test_l[8:] = [float("inf")] + [None] * (len(STEPS) - 9)
                    train_l[8:] = [float("nan")] * (len(STEPS) - 8)
                if metric == "error_rate" and method == "baseline" and seed == 0:
                    train_l[-1] = 0.0  # a zero error cannot go on a log axis
                grid = None
                if method == "adalfl" and seed == 0:
                    grid = _grid("regression" if metric == "mse" else "classification")
                run = {
                    "task": task,
                    "model": model,
                    "method": method,
                    "seed": seed,
                    "metric": metric,
                    "final": {
                        "test_error": None if diverged else test_l[-1],
                        "train_error": train_l[-1],
                        "diverged": diverged,
                    },
                    "curve": {"step": STEPS, "train_error": train_l, "test_error": test_l},
                    "loss_grid": grid,
                }
                path = root / task / model / method / f"seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(run))
    return root


@pytest.fixture
def results(tmp_path):
    return load_results(make_results(tmp_path / "runs"))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"
    return struct.unpack(">II", data[16:24])


def test_learning_curves_one_png_per_task_model(results, tmp_path):
    out = tmp_path / "figs" / "nested"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarnings from NaN/Inf/zero handling
        paths = plot_learning_curves(results, out)
    assert sorted(p.name for p in paths) == [
        "curves_diabetes_mlp.png",
        "curves_mnist_lenet5.png",
    ]
    assert sorted(out.iterdir()) == sorted(paths)
    for p in paths:
        assert _png_size(p) == (720, 480)  # 6 × 4 in at 120 dpi


@pytest.mark.parametrize("band", ["std", "minmax", None])
def test_learning_curves_options(results, tmp_path, band):
    paths = plot_learning_curves(results, tmp_path / str(band), show_train=True, band=band)
    assert len(paths) == 2
    for p in paths:
        _png_size(p)


def test_learning_curves_reject_unknown_band(results, tmp_path):
    with pytest.raises(ValueError, match="band"):
        plot_learning_curves(results, tmp_path, band="iqr")


def test_learning_curves_survive_all_diverged(results, tmp_path):
    bad = []
    for r in results:
        r = dict(r)
        r["final"] = {"test_error": float("nan"), "diverged": True}
        r["curve"] = {"step": STEPS, "test_error": [float("inf")] * len(STEPS)}
        bad.append(r)
    bad[0]["curve"] = None  # and one run without any curve
    paths = plot_learning_curves(bad, tmp_path)
    assert len(paths) == 2
    for p in paths:
        _png_size(p)


def test_loss_evolution_one_png_per_grid(results, tmp_path):
    out = tmp_path / "loss"
    paths = plot_loss_evolution(results, out)
    assert sorted(p.name for p in paths) == ["loss_diabetes_mlp.png", "loss_mnist_lenet5.png"]
    sizes = {p.name: _png_size(p) for p in paths}
    # Classification has two panels side by side, so it is wider than regression.
    assert sizes["loss_mnist_lenet5.png"][0] > sizes["loss_diabetes_mlp.png"][0]


def test_loss_evolution_seed_and_method_selection(results, tmp_path):
    assert plot_loss_evolution(results, tmp_path / "a", seed=1) == []  # no grid for seed 1
    assert len(plot_loss_evolution(results, tmp_path / "b", seed=0)) == 2
    assert plot_loss_evolution(results, tmp_path / "c", method="baseline") == []
    # Another method's grids get their own file names.
    renamed = [dict(r, method="ml3") for r in results if r["method"] == "adalfl"]
    paths = plot_loss_evolution(renamed, tmp_path / "d", method="ml3")
    assert sorted(p.name for p in paths) == [
        "loss_diabetes_mlp_ml3.png",
        "loss_mnist_lenet5_ml3.png",
    ]


def test_loss_evolution_survives_nan_grid(results, tmp_path):
    runs = [dict(r) for r in results]
    for r in runs:
        if r["loss_grid"]:
            grid = json.loads(json.dumps(r["loss_grid"]))
            for snaps in grid["curves"].values():
                snaps[-1] = [float("nan")] * len(grid["x"])
                snaps[0][3] = float("inf")
            r["loss_grid"] = grid
            r["final"] = {"test_error": None, "diverged": True}
    paths = plot_loss_evolution(runs, tmp_path)
    assert len(paths) == 2
    for p in paths:
        _png_size(p)
