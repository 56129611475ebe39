"""Final errors of result records summarized over seeds: mean ± std, failures, paired wins.

Records are grouped by (task, model, method key). ``std`` is the sample standard
deviation (ddof=1) of the runs that did not fail (``adaloss.bench.failures``); with
fewer than two such runs it is NaN (undefined). A repeated seed keeps the first record
in path order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from adaloss.bench.failures import COLLAPSED, DIVERGED, failure
from adaloss.bench.names import method_label, method_order, row_key
from adaloss.bench.results import final_error


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
                n_diverged=sum(f == DIVERGED for f in failures.values()),
                mean=mean,
                std=std,
                values=values,
                n_collapsed=sum(f == COLLAPSED for f in failures.values()),
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
