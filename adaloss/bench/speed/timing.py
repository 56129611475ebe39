"""Interleaved timing: the methods take turns block by block, so machine load falls on all alike.

The timed steps of each method are cut into short blocks and the methods take turns
block by block (the order rotates every round). A method with a meta step every step
reports the median time of single steps; ``ENGINE/K`` reports the mean time per step
over complete K-step cycles (a median over single steps would hide the one expensive
step in every K).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from adaloss.bench.speed.methods import Method, Runner, sync


def _shares(total: int, parts: int) -> list[int]:
    """``total`` units spread over ``parts`` rounds as evenly as possible."""
    return [total * (r + 1) // parts - total * r // parts for r in range(parts)]


def timed_steps(method: Method, steps: int) -> int:
    """Timed steps for ``method``: ``steps``, or whole K-step cycles (at least two) for K > 1."""
    if method.cycle == 1:
        return steps
    return max(2, math.ceil(steps / method.cycle)) * method.cycle


def time_interleaved(
    runners: dict[str, Runner],
    steps: int,
    warmup: int,
    rounds: int,
    device: torch.device,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds of every timed step of every runner, measured round-robin in short blocks.

    Each runner first takes ``warmup`` untimed steps (at least 2 when K > 1, so that
    both the meta step and the plain learned-loss step are warm). Each round every
    runner takes its share of timed steps (whole K-step cycles for ``ENGINE/K``); the
    order of runners rotates from round to round.
    """
    names = list(runners)
    for name in names:
        runner = runners[name]
        for _ in range(max(warmup, 2 if runner.method.cycle > 1 else 0)):
            runner.step()
        sync(device)
        if progress:
            progress(f"warmed up {name}")
    rounds = max(1, min(rounds, steps))
    plan = {}
    for name in names:
        cycle = runners[name].method.cycle
        plan[name] = [
            n * cycle for n in _shares(timed_steps(runners[name].method, steps) // cycle, rounds)
        ]
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        gc.collect()
        for name in names[r % len(names) :] + names[: r % len(names)]:
            runner = runners[name]
            for _ in range(plan[name][r]):
                sync(device)
                start = time.perf_counter()
                runner.step()
                sync(device)
                times[name].append(time.perf_counter() - start)
        if progress:
            progress(f"round {r + 1}/{rounds}")
    return times


def summarize_times(method: Method, times: Sequence[float]) -> dict[str, Any]:
    """Per-step time in ms: median of single steps, or mean over complete K-step cycles."""
    ms = [t * 1e3 for t in times]
    if method.cycle == 1:
        q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0], ms[0], ms[0]]
        return {
            "ms": statistics.median(ms),
            "statistic": "median of single steps",
            "q25_ms": q[0],
            "q75_ms": q[2],
            "steps": len(ms),
        }
    k = method.cycle
    cycles = [sum(ms[i : i + k]) / k for i in range(0, len(ms) - k + 1, k)]
    return {
        "ms": statistics.fmean(cycles),
        "statistic": f"mean over complete {k}-step cycles",
        "min_cycle_ms": min(cycles),
        "max_cycle_ms": max(cycles),
        "cycles": len(cycles),
        "steps": len(cycles) * k,
    }
