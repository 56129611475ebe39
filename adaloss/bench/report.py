"""Benchmark result tables: load per-run JSON files and summarize them Table-1 style.

The benchmark runner writes one JSON file per run at
``DIR/<task>/<model>/<method>/seed<N>.json``. This module only reads those files (no
torch), groups them by (task, model, method) and formats mean ± sample std tables, with
an optional paired per-seed comparison against the baseline.

Conventions:

- A run *fails* when it diverges or collapses. *Diverged*: ``final.diverged`` is true or
  its final test error is missing, NaN or infinite. *Collapsed*: it ended no better than
  it started on held-out data (final selection error ≥ the step-0 one; runs from before the
  selection split are judged on validation error), or it ended at chance: a classifier
  with error ≥ 1 − 2/C (accuracy at most twice chance), a regression no better on the
  selection split than predicting the training targets' mean. Failed runs are counted and shown,
  never averaged in.
- ``std`` is the sample standard deviation (ddof=1) of the runs that did not fail; with
  fewer than two such runs it is NaN (undefined), and the table prints just the mean.
- The best cell in a row is the lowest mean over the runs that did not fail.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_METHODS",
    "PairedComparison",
    "Summary",
    "format_table",
    "is_diverged",
    "load_results",
    "method_label",
    "method_order",
    "paired_comparison",
    "row_key",
    "summarize",
]

#: Methods in the paper's column order; any other method string sorts after these.
KNOWN_METHODS: tuple[str, ...] = ("baseline", "ml3", "metalr", "adalfl")
#: Tasks in the paper's row order (normalized: lower case, alphanumerics only).
KNOWN_TASKS: tuple[str, ...] = (
    "crime",
    "diabetes",
    "california",
    "digits",
    "mnist",
    "cifar10",
    "cifar100",
    "svhn",
)
#: Models in the paper's row order within a task (normalized, matched as substrings).
KNOWN_MODELS: tuple[str, ...] = (
    "logistic",
    "mlp",
    "lenet",
    "vgg",
    "allcnn",
    "resnet",
    "squeezenet",
    "wrn2810",
    "wrn168",
    "wrn",
)
_DEFAULT_LABELS = {
    "baseline": "Baseline",
    "ml3": "ML3 (Offline)",
    "metalr": "Meta-LR (Online)",
    "adalfl": "AdaLFL (Online)",
}
_METRIC_NAMES = {"mse": "MSE", "error_rate": "error rate"}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _task_rank(task: str) -> int:
    t = _norm(task)
    for i, known in enumerate(KNOWN_TASKS):
        # "cifar10" must not claim "cifar100": a prefix match may not run on into a digit.
        if t == known or (t.startswith(known) and not t[len(known)].isdigit()):
            return i
    return len(KNOWN_TASKS)


def _model_rank(model: str) -> int:
    m = _norm(model)
    for i, known in enumerate(KNOWN_MODELS):
        if known in m:
            return i
    return len(KNOWN_MODELS)


def row_key(task: str, model: str) -> tuple:
    """Sort key for a (task, model) row: paper order first, then alphabetical."""
    return (_task_rank(task), str(task), _model_rank(model), str(model))


def method_order(methods: Iterable[str]) -> list[str]:
    """Unique methods, known ones first in paper order, the rest alphabetically."""
    unique = set(methods)
    known = [m for m in KNOWN_METHODS if m in unique]
    return known + sorted(unique - set(KNOWN_METHODS))


def method_label(method: str, results: Iterable[dict] = ()) -> str:
    """Display name of ``method``: the first ``label`` in its results, else a default."""
    for r in results:
        if r.get("method") == method and r.get("label"):
            return str(r["label"])
    return _DEFAULT_LABELS.get(method, method)


def _to_float(value: Any) -> float:
    """JSON number (or null) -> float; anything unusable becomes NaN."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


SPLITS = ("test", "selection", "val", "train")
_SPLIT_NAMES = {"test": "test", "selection": "selection", "val": "validation", "train": "training"}


def final_test_error(result: dict) -> float:
    """The run's final test error as a float (NaN when missing)."""
    return final_error(result, "test")


def final_error(result: dict, split: str = "test") -> float:
    """The run's final error on ``split`` (see SPLITS) as a float (NaN when missing)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return _to_float((result.get("final") or {}).get(f"{split}_error"))


def is_diverged(result: dict) -> bool:
    """True when the run is flagged diverged or has no finite final test error."""
    final = result.get("final") or {}
    return bool(final.get("diverged")) or not math.isfinite(final_test_error(result))


def is_collapsed(result: dict) -> bool:
    """True when a finite run ended no better than it started, or at chance (see above)."""
    if is_diverged(result):
        return False
    curve = result.get("curve") or {}
    split = "selection" if curve.get("selection_error") else "val"
    errors = [_to_float(v) for v in curve.get(f"{split}_error") or []]
    if len(errors) >= 2 and math.isfinite(errors[0]) and errors[-1] >= errors[0]:
        return True
    classes = result.get("num_classes")
    if classes and result.get("metric") == "error_rate":
        return final_error(result, split) >= 1 - 2 / int(classes)
    constant = _to_float(result.get("mean_predictor_error"))
    if split == "selection" and math.isfinite(constant):
        return final_error(result, "selection") >= constant
    return False


def failure(result: dict) -> str:
    """ "diverged", "collapsed" or "" (the run trained)."""
    return "diverged" if is_diverged(result) else "collapsed" if is_collapsed(result) else ""


def load_results(directory: str | Path) -> list[dict]:
    """Every result JSON under ``directory`` (recursive), in path order.

    Files that fail to parse, or are not a run record with ``task``, ``model``,
    ``method`` and ``seed``, are skipped with a warning. Each record gets a ``_path``
    key with the file it came from.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"result directory not found: {root}")
    results = []
    for path in sorted(root.rglob("*.json")):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.warn(f"skipping unreadable result file {path}: {exc}", stacklevel=2)
            continue
        if not isinstance(data, dict) or any(
            k not in data for k in ("task", "model", "method", "seed")
        ):
            warnings.warn(
                f"skipping {path}: not a run record (needs task, model, method, seed)",
                stacklevel=2,
            )
            continue
        data["_path"] = str(path)
        results.append(data)
    return results


@dataclass(frozen=True)
class Summary:
    """Final test error of one (task, model, method) over its seeds."""

    task: str
    model: str
    method: str
    label: str
    metric: str
    n_runs: int  # result files (distinct seeds)
    n: int  # runs that did not fail, the ones mean and std are over
    n_diverged: int
    mean: float  # NaN when every run failed
    std: float  # sample std (ddof=1); NaN when n < 2
    values: dict[int, float] = field(default_factory=dict)  # seed -> error, NaN if failed
    n_collapsed: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # seed -> "diverged"/"collapsed"
    raw: dict[int, float] = field(default_factory=dict)  # seed -> error, failed runs included

    @property
    def n_failed(self) -> int:
        return self.n_diverged + self.n_collapsed


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var)


def _by_seed(runs: list[dict]) -> dict[int, dict]:
    """Runs keyed by seed; a repeated seed keeps the first run (path order) and warns."""
    out: dict[int, dict] = {}
    for r in runs:
        seed = int(r["seed"])
        if seed in out:
            warnings.warn(
                f"duplicate seed {seed} for {r['task']}/{r['model']}/{r['method']}: "
                f"keeping {out[seed].get('_path', 'the first')}, ignoring {r.get('_path', '')}",
                stacklevel=3,
            )
            continue
        out[seed] = r
    return out


def _group(results: Iterable[dict]) -> dict[tuple[str, str, str], list[dict]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((str(r["task"]), str(r["model"]), str(r["method"])), []).append(r)
    return groups


def summarize(results: Iterable[dict], split: str = "test") -> list[Summary]:
    """One :class:`Summary` per (task, model, method), sorted in table order.

    ``split="val"`` summarizes the final validation error instead: the number a choice
    between variants may be based on (the test error never may).
    """
    results = list(results)
    order = {m: i for i, m in enumerate(method_order(r["method"] for r in results))}
    out = []
    for (task, model, method), runs in _group(results).items():
        runs_by_seed = _by_seed(runs)
        failures = {s: failure(r) for s, r in sorted(runs_by_seed.items()) if failure(r)}
        raw = {s: final_error(r, split) for s, r in sorted(runs_by_seed.items())}
        values = {s: (math.nan if s in failures else v) for s, v in raw.items()}
        finite = [v for v in values.values() if math.isfinite(v)]
        mean, std = _mean_std(finite)
        out.append(
            Summary(
                task=task,
                model=model,
                method=method,
                label=method_label(method, runs),
                metric=str(runs[0].get("metric", "")),
                n_runs=len(values),
                n=len(finite),
                n_diverged=sum(f == "diverged" for f in failures.values()),
                mean=mean,
                std=std,
                values=values,
                n_collapsed=sum(f == "collapsed" for f in failures.values()),
                failures=failures,
                raw=raw,
            )
        )
    out.sort(key=lambda s: (row_key(s.task, s.model), order[s.method]))
    return out


@dataclass(frozen=True)
class PairedComparison:
    """``method`` vs ``baseline`` on the seeds both ran, for one (task, model).

    ``diff_mean``/``diff_std`` are over seeds where both runs are finite
    (method − baseline, so negative is better). ``wins`` counts shared seeds where the
    method's error is lower; a failed (diverged or collapsed) run loses to any other, and
    two failed runs are not a win.
    """

    task: str
    model: str
    method: str
    baseline: str
    n: int  # shared seeds
    n_finite: int  # shared seeds where both runs are finite
    diff_mean: float
    diff_std: float
    wins: int


def paired_comparison(
    results: Iterable[dict], method: str, baseline: str = "baseline", split: str = "test"
) -> dict[tuple[str, str], PairedComparison]:
    """Per-seed ``method`` vs ``baseline`` comparison for every (task, model) with both."""
    summaries = summarize(results, split)
    index = {(s.task, s.model, s.method): s for s in summaries}
    out = {}
    for s in summaries:
        if s.method != method or (s.task, s.model, baseline) not in index:
            continue
        base = index[(s.task, s.model, baseline)]
        shared = sorted(set(s.values) & set(base.values))
        diffs, wins = [], 0
        for seed in shared:
            m, b = s.values[seed], base.values[seed]
            if math.isfinite(m) and math.isfinite(b):
                diffs.append(m - b)
                wins += m < b
            elif math.isfinite(m):  # baseline failed, method did not
                wins += 1
        d_mean, d_std = _mean_std(diffs)
        out[(s.task, s.model)] = PairedComparison(
            s.task, s.model, method, baseline, len(shared), len(diffs), d_mean, d_std, wins
        )
    return out


def _fmt(x: float, sign: bool = False) -> str:
    """Four decimals like the paper; scientific notation for very small or large values."""
    if not math.isfinite(x):
        return "n/a"
    plus = "+" if sign else ""
    if x == 0 or 1e-4 <= abs(x) < 1e4:
        return f"{x:{plus}.4f}"
    return f"{x:{plus}.3e}"


def _cell(s: Summary | None) -> str:
    if s is None:
        return "-"
    if s.n == 0:
        if not s.n_collapsed or not s.n_diverged:  # one kind of failure: name it
            return f"{'diverged' if s.n_diverged else 'collapsed'} ({s.n_failed}/{s.n_runs})"
        return f"failed ({_failure_note(s)})"
    text = _fmt(s.mean) if s.n < 2 else f"{_fmt(s.mean)} ± {_fmt(s.std)}"
    note = f"n={s.n}" + (f"; {_failure_note(s)}" if s.n_failed else "")
    return f"{text} ({note})"


def _failure_note(s: Summary) -> str:
    parts = [f"{s.n_diverged} diverged"] if s.n_diverged else []
    parts += [f"{s.n_collapsed} collapsed"] if s.n_collapsed else []
    return ", ".join(parts)


def _paired_cell(p: PairedComparison | None) -> str:
    if p is None:
        return "-"
    if p.n_finite == 0:
        diff = "n/a"
    elif p.n_finite < 2:
        diff = _fmt(p.diff_mean, sign=True)
    else:
        diff = f"{_fmt(p.diff_mean, sign=True)} ± {_fmt(p.diff_std)}"
    return f"{diff} (wins {p.wins}/{p.n})"


def _render(header: list[str], rows: list[list[str]], markdown: bool, n_left: int) -> list[str]:
    """Lines of a table; the first ``n_left`` columns are labels, the rest numbers."""
    if markdown:

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        sep = "|" + "|".join("---" if i < n_left else "--:" for i in range(len(header))) + "|"
        return [line(header), sep] + [line(r) for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def format_table(
    results: Iterable[dict],
    markdown: bool = False,
    paired: bool = False,
    baseline: str = "baseline",
    split: str = "test",
    per_seed: bool = False,
) -> str:
    """Table-1-style final test error: one row per (task, model), one column per method.

    Cells read ``mean ± std (n=k)`` over non-diverged seeds; the lowest mean in each row
    is bold in Markdown and starred in plain text. With ``paired=True`` a second table
    compares every other method with ``baseline`` seed by seed: mean ± std of the
    difference (method − baseline) and how many shared seeds the method won.
    ``split`` selects the final error reported (test, val or train). With
    ``per_seed=True`` every (task, model) also gets a seed × method table of the values the
    means are over, so that a bimodal row (some seeds collapse, some train) can be read.
    """
    results = list(results)
    summaries = summarize(results, split)
    if not summaries:
        return "(no results)"
    methods = method_order(s.method for s in summaries)
    labels = {m: method_label(m, results) for m in methods}
    index = {(s.task, s.model, s.method): s for s in summaries}
    rows_keys = sorted({(s.task, s.model) for s in summaries}, key=lambda k: row_key(*k))

    header = ["Task", "Model", "Metric"] + [labels[m] for m in methods]
    rows = []
    for task, model in rows_keys:
        cells = [index.get((task, model, m)) for m in methods]
        means = [c.mean for c in cells if c is not None and math.isfinite(c.mean)]
        best = min(means) if means else None
        metric = next(c.metric for c in cells if c is not None)
        row = [task, model, _METRIC_NAMES.get(metric, metric)]
        for c in cells:
            text = _cell(c)
            if best is not None and c is not None and c.mean == best:
                text = f"**{text}**" if markdown else f"{text} *"
            row.append(text)
        rows.append(row)

    lines = [
        f"Final {_SPLIT_NAMES[split]} error (lower is better): "
        "mean ± sample std over the seeds that did not fail (diverge or collapse); "
        + ("**bold**" if markdown else "*")
        + " = lowest mean in the row.",
        "",
        *_render(header, rows, markdown, n_left=3),
    ]

    if paired:
        others = [m for m in methods if m != baseline]
        lines.append("")
        if baseline not in methods:
            lines.append(f"(no '{baseline}' runs: paired comparison skipped)")
        elif not others:
            lines.append("(only baseline runs: nothing to compare)")
        else:
            comps = {m: paired_comparison(results, m, baseline, split) for m in others}
            lines += [
                f"Paired vs {labels[baseline]} on shared seeds: mean ± std of "
                f"(method − {labels[baseline]}) over seeds where both are finite; "
                f"wins = seeds with lower {_SPLIT_NAMES[split]} error (a diverged run loses).",
                "",
            ]
            p_header = ["Task", "Model"] + [f"{labels[m]} vs {labels[baseline]}" for m in others]
            p_rows = [
                [task, model] + [_paired_cell(comps[m].get((task, model))) for m in others]
                for task, model in rows_keys
            ]
            lines += _render(p_header, p_rows, markdown, n_left=2)
    if per_seed:
        for task, model in rows_keys:
            lines += ["", f"{task} / {model}, final {_SPLIT_NAMES[split]} error per seed:", ""]
            lines += _per_seed_table(task, model, methods, labels, index, markdown)
    return "\n".join(lines)


def _per_seed_table(
    task: str,
    model: str,
    methods: list[str],
    labels: dict[str, str],
    index: dict[tuple[str, str, str], Summary],
    markdown: bool,
) -> list[str]:
    """Rows = seeds, columns = methods; "diverged"/"collapsed" for a failed run, "-" for none."""
    cells = {m: index.get((task, model, m)) for m in methods}
    seeds = sorted({seed for c in cells.values() if c is not None for seed in c.values})

    def value(summary: Summary | None, seed: int) -> str:
        if summary is None or seed not in summary.values:
            return "-"
        v = summary.values[seed]
        if math.isfinite(v):
            return _fmt(v)
        what = summary.failures.get(seed, "n/a")
        raw = summary.raw.get(seed, math.nan)
        return f"{what} ({_fmt(raw)})" if what == "collapsed" and math.isfinite(raw) else what

    rows = [[str(seed)] + [value(cells[m], seed) for m in methods] for seed in seeds]
    return _render(["Seed"] + [labels[m] for m in methods], rows, markdown, n_left=1)
