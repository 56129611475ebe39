"""``adaloss table``: result records as Table-1-style text or Markdown.

One row per (task, model), one column per method key: mean ± sample std of the final
error over the seeds that did not fail (``adaloss.bench.summary``), the failed runs
counted beside it; the lowest mean in a row is marked. Optionally a paired per-seed
comparison with the baseline and a seed-by-seed table per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from adaloss.bench.failures import COLLAPSED
from adaloss.bench.names import method_label, method_order, metric_label, row_key
from adaloss.bench.results import SPLIT_LABELS
from adaloss.bench.summary import PairedComparison, Summary, paired_comparison, summarize
from adaloss.bench.tables import render_table

__all__ = ["format_table"]


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
        row = [task, model, metric_label(metric)]
        for c in cells:
            text = _cell(c)
            if best is not None and c is not None and c.mean == best:
                text = f"**{text}**" if markdown else f"{text} *"
            row.append(text)
        rows.append(row)

    lines = [
        f"Final {SPLIT_LABELS[split]} error (lower is better): "
        "mean ± sample std over the seeds that did not fail (diverge or collapse); "
        + ("**bold**" if markdown else "*")
        + " = lowest mean in the row.",
        "",
        *render_table(header, rows, markdown, n_left=3),
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
                f"wins = seeds with lower {SPLIT_LABELS[split]} error (a diverged run loses).",
                "",
            ]
            p_header = ["Task", "Model"] + [f"{labels[m]} vs {labels[baseline]}" for m in others]
            p_rows = [
                [task, model] + [_paired_cell(comps[m].get((task, model))) for m in others]
                for task, model in rows_keys
            ]
            lines += render_table(p_header, p_rows, markdown, n_left=2)
    if per_seed:
        for task, model in rows_keys:
            lines += ["", f"{task} / {model}, final {SPLIT_LABELS[split]} error per seed:", ""]
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
        return f"{what} ({_fmt(raw)})" if what == COLLAPSED and math.isfinite(raw) else what

    rows = [[str(seed)] + [value(cells[m], seed) for m in methods] for seed in seeds]
    return render_table(["Seed"] + [labels[m] for m in methods], rows, markdown, n_left=1)
