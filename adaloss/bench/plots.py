"""Benchmark figures from result JSON: learning curves (paper Figure 3) and the learned
loss over training (Figures 1, 4, 9-18).

Figures are built with :class:`matplotlib.figure.Figure` directly and saved through the
Agg canvas, so this module never touches pyplot or the global backend: it is safe on a
headless machine and inside a notebook alike.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from adaloss.bench.failures import is_diverged
from adaloss.bench.names import METHODS, method_label, method_order, metric_label, row_key
from adaloss.bench.results import to_float

__all__ = ["plot_learning_curves", "plot_loss_evolution"]

_DPI = 120
_SIZE = (6.0, 4.0)
# Fixed colours for the paper's methods (in its order) so a method looks alike in every figure.
_METHOD_COLORS = {method: f"C{i}" for i, method in enumerate(METHODS)}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def _colors(methods: list[str]) -> dict[str, str]:
    extra = [f"C{i}" for i in range(4, 10)]
    others = [m for m in methods if m not in _METHOD_COLORS]
    out = {m: _METHOD_COLORS[m] for m in methods if m in _METHOD_COLORS}
    out.update({m: extra[i % len(extra)] for i, m in enumerate(others)})
    return out


def _rows(results: list[dict]) -> list[tuple[str, str]]:
    keys = {(str(r["task"]), str(r["model"])) for r in results}
    return sorted(keys, key=lambda k: row_key(*k))


def _array(values) -> np.ndarray:
    """JSON list (may hold null/NaN/Inf/junk) -> float array with NaN for anything unusable."""
    a = np.asarray([to_float(v) for v in values or []], dtype=float)
    a[~np.isfinite(a)] = np.nan
    return a


def _curve(run: dict, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of one run's curve, values <= 0 masked (log axis); None if absent."""
    curve = run.get("curve") or {}
    steps, values = _array(curve.get("step")), _array(curve.get(key))
    n = min(len(steps), len(values))
    if n == 0:
        return None
    steps, values = steps[:n], values[:n]
    values[values <= 0] = np.nan
    keep = np.isfinite(steps)
    return steps[keep], values[keep]


def _stack(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Put curves on the union of their steps: (steps, matrix seeds × steps, NaN = gap)."""
    steps = np.unique(np.concatenate([s for s, _ in curves]))
    mat = np.full((len(curves), len(steps)), np.nan)
    for i, (s, v) in enumerate(curves):
        mat[i, np.searchsorted(steps, s)] = v
    return steps, mat


def _nan_stats(mat: np.ndarray, band: str | None):
    """Column-wise mean and band (lo, hi) over finite entries; NaN where none."""
    finite = np.isfinite(mat)
    count = finite.sum(axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.where(count > 0, np.nansum(mat, axis=0) / np.maximum(count, 1), np.nan)
        if band == "minmax":
            lo, hi = np.nanmin(mat, axis=0), np.nanmax(mat, axis=0)
        elif band == "std":
            std = np.where(count > 1, np.nanstd(mat, axis=0, ddof=1), np.nan)
            lo, hi = mean - std, mean + std
            # A log axis cannot show a band below zero: clip to the smallest value seen.
            floor = np.nanmin(mat, axis=0)
            lo = np.where(lo > 0, lo, floor)
        else:
            lo = hi = None
    return mean, lo, hi


def plot_learning_curves(
    results: Iterable[dict],
    out_dir: str | Path,
    *,
    show_train: bool = False,
    band: str | None = "minmax",
) -> list[Path]:
    """One PNG per (task, model): mean test error over seeds against gradient step.

    The y axis is logarithmic (Figure 3). ``band`` shades "minmax" (the seeds' range),
    "std" (mean ± sample std, clipped to stay positive) or nothing (None). Diverged runs
    are left out of the mean and band and drawn as thin dotted lines that end in an
    "x" where their error was last finite (the y range follows the healthy runs, so a
    blow-up runs off the top); the legend says how many diverged. With
    ``show_train`` the training error is added as a dashed line of the same colour.
    Returns the written files ``curves_<task>_<model>.png``.
    """
    if band not in ("minmax", "std", None):
        raise ValueError(f"band must be 'minmax', 'std' or None, got {band!r}")
    results = list(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    methods = method_order(r["method"] for r in results)
    colors = _colors(methods)
    paths = []
    for task, model in _rows(results):
        runs = [r for r in results if str(r["task"]) == task and str(r["model"]) == model]
        fig = Figure(figsize=_SIZE, dpi=_DPI, layout="tight")
        ax = fig.add_subplot()
        drew = False
        seen: list[np.ndarray] = []  # what the y range should cover (diverged runs aside)
        for method in methods:
            mruns = [r for r in runs if r["method"] == method]
            if not mruns:
                continue
            color = colors[method]
            ok = [r for r in mruns if not is_diverged(r)]
            bad = [r for r in mruns if is_diverged(r)]
            label = method_label(method, mruns)
            if bad:
                label += f", {len(bad)}/{len(mruns)} diverged"
            keys = ["test_error"] + (["train_error"] if show_train else [])
            labelled = False
            for key in keys:
                style = "-" if key == "test_error" else "--"
                curves = [c for c in (_curve(r, key) for r in ok) if c is not None]
                if curves:
                    steps, mat = _stack(curves)
                    mean, lo, hi = _nan_stats(mat, band if key == "test_error" else None)
                    fin = np.isfinite(mean)
                    ax.plot(
                        steps[fin],
                        mean[fin],
                        style,
                        color=color,
                        lw=1.6 if key == "test_error" else 1.2,
                        alpha=1.0 if key == "test_error" else 0.8,
                        label=None if labelled else label,
                    )
                    labelled = drew = True
                    seen.append(mean[fin])
                    if lo is not None and len(curves) > 1:
                        ax.fill_between(steps, lo, hi, color=color, alpha=0.15, lw=0)
                        seen += [lo[np.isfinite(lo)], hi[np.isfinite(hi)]]
                if key != "test_error":
                    continue
                for r in bad:  # what there is of a diverged run, ended with an "x"
                    c = _curve(r, key)
                    if c is None or not np.isfinite(c[1]).any():
                        continue
                    s, v = c
                    fin = np.isfinite(v)
                    ax.plot(s[fin], v[fin], ":", color=color, lw=0.9, alpha=0.7)
                    ax.plot(s[fin][-1], v[fin][-1], "x", color=color, ms=6)
                    drew = True
            if not labelled:  # only diverged runs, or no curves: keep it in the legend
                ax.plot([], [], ":", color=color, label=label)
        metric = next((str(r.get("metric")) for r in runs if r.get("metric")), "")
        name = metric_label(metric) if metric else "error"
        ax.set_ylabel(f"{name[0].upper()}{name[1:]}" if show_train else f"Test {name}")
        ax.set_xlabel("Gradient step")
        ax.set_title(f"{task} + {model}")
        if drew:
            ax.set_yscale("log")
            # A diverging run can climb by orders of magnitude before it turns Inf: keep
            # the axis on the healthy runs and let a diverged line leave the plot.
            span = np.concatenate(seen) if seen else np.empty(0)
            if len(span):
                ax.set_ylim(span.min() / 1.25, span.max() * 1.25)
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
        handles, labels = ax.get_legend_handles_labels()
        if show_train:
            handles += [
                Line2D([], [], color="0.3", ls="-", label="test"),
                Line2D([], [], color="0.3", ls="--", label="train"),
            ]
            labels += ["test", "train"]
        if handles:
            ax.legend(handles, labels, fontsize=8, framealpha=0.8)
        path = out / f"curves_{_safe(task)}_{_safe(model)}.png"
        fig.savefig(path, dpi=_DPI)
        paths.append(path)
    return paths


def _pick_run(runs: list[dict], seed: int | None) -> dict | None:
    with_grid = [r for r in runs if isinstance(r.get("loss_grid"), dict)]
    if seed is not None:
        with_grid = [r for r in with_grid if int(r["seed"]) == int(seed)]
    return min(with_grid, key=lambda r: int(r["seed"]), default=None)


def plot_loss_evolution(
    results: Iterable[dict],
    out_dir: str | Path,
    method: str = "adalfl",
    seed: int | None = None,
) -> list[Path]:
    """One PNG per (task, model) whose ``method`` runs carry a ``loss_grid``.

    Each snapshot of the learned loss is one line coloured by its gradient step, with a
    colorbar (Figures 1, 4, 9-18). Every entry of ``loss_grid.curves`` gets its own
    panel side by side: "y = 1" and "y = 0" against predicted probability for
    classification, a single "loss" panel against the error for regression. Uses the
    lowest seed that has a grid, or ``seed`` if given (rows without it are skipped).
    Files are ``loss_<task>_<model>.png`` (``loss_<task>_<model>_<method>.png`` for a
    method other than "adalfl", so several methods can share one ``out_dir``).
    """
    results = list(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmap = colormaps["viridis"]
    suffix = "" if method == "adalfl" else f"_{_safe(method)}"
    paths = []
    for task, model in _rows(results):
        runs = [
            r
            for r in results
            if str(r["task"]) == task and str(r["model"]) == model and r["method"] == method
        ]
        run = _pick_run(runs, seed)
        if run is None:
            continue
        grid = run["loss_grid"]
        x = _array(grid.get("x"))
        steps = _array(grid.get("steps"))
        panels = {k: v for k, v in (grid.get("curves") or {}).items() if isinstance(v, list) and v}
        if len(x) == 0 or len(steps) == 0 or not panels:
            where = run.get("_path", f"{task}/{model}")
            warnings.warn(f"empty loss_grid in {where}", stacklevel=2)
            continue
        fin_steps = steps[np.isfinite(steps)]
        lo, hi = (float(fin_steps.min()), float(fin_steps.max())) if len(fin_steps) else (0, 1)
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
        x_label = str(grid.get("x_label") or "x")
        width = _SIZE[0] if len(panels) == 1 else 4.6 * len(panels)
        fig = Figure(figsize=(width, _SIZE[1]), dpi=_DPI, layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (name, snaps) in zip(axes, panels.items(), strict=True):
            for step, ys in zip(steps, snaps, strict=False):
                y = _array(ys)
                if len(y) != len(x) or not np.isfinite(y).any():
                    continue
                color = cmap(norm(step)) if np.isfinite(step) else "0.5"
                ax.plot(x, y, color=color, lw=1.2, alpha=0.9)
            is_cls = name.replace(" ", "").startswith("y=")
            ax.set_xlabel(f"{x_label} ({name})" if is_cls else x_label)
            ax.set_ylabel("Learned loss")
            ax.grid(True, alpha=0.3)
        cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), pad=0.02)
        cbar.set_label("Gradient step")
        note = " (diverged)" if is_diverged(run) else ""
        fig.suptitle(
            f"{task} + {model}: {method_label(method, runs)} learned loss, seed {run['seed']}{note}"
        )
        path = out / f"loss_{_safe(task)}_{_safe(model)}{suffix}.png"
        fig.savefig(path, dpi=_DPI)
        paths.append(path)
    return paths
