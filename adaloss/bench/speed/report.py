"""The speed report: the project's targets, the table, and the text around it."""

from __future__ import annotations

from typing import Any

from adaloss.bench.tables import render_table

TARGETS = (
    "forward ≤ 3.0× plain (LeNet-5, ResNet-18)",
    "forward ≤ 0.75× unroll (LeNet-5, ResNet-18)",
    "fixed (no meta step) ≤ 1.05× plain",
    "forward/10 ≤ 1.25× plain",
    "forward peak memory ≤ 1.3× plain (LeNet-5, ResNet-18)",
)
CONVOLUTIONAL = ("lenet5", "resnet18")  # the targets name these two for forward's ratios


def check_speed_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's speed targets (issue 16), for every model where the methods were measured."""
    checks = []
    for model, rows in results["models"].items():
        methods = rows["methods"]

        def ms(name: str, methods: dict = methods) -> float | None:
            return methods[name]["ms"] if name in methods else None

        def mem(name: str, methods: dict = methods) -> float | None:
            return methods.get(name, {}).get("peak_mib")

        candidates = []
        if model in CONVOLUTIONAL:
            candidates += [
                (TARGETS[0], ms("forward"), ms("plain"), 3.0),
                (TARGETS[1], ms("forward"), ms("unroll"), 0.75),
            ]
        candidates += [
            (TARGETS[2], ms("fixed"), ms("plain"), 1.05),
            (TARGETS[3], ms("forward/10"), ms("plain"), 1.25),
        ]
        if model in CONVOLUTIONAL:
            candidates.append((TARGETS[4], mem("forward"), mem("plain"), 1.3))
        for target, num, den, limit in candidates:
            if num is None or not den:
                continue
            ratio = num / den
            checks.append(
                {
                    "model": model,
                    "target": target,
                    "ratio": ratio,
                    "limit": limit,
                    "met": ratio <= limit,
                }  # fmt: skip
            )
    return checks


def format_speed_table(results: dict[str, Any], markdown: bool = False) -> str:
    """One row per (model, method): time per step, memory, and both as ratios to ``plain``."""
    header = ["model", "method", "ms/step", "spread", "× plain", "peak MiB", "× plain"]
    rows = []
    for entry in results["models"].values():
        methods = entry["methods"]
        plain = methods.get("plain", {})
        for name, m in methods.items():
            t_ratio = m["ms"] / plain["ms"] if plain.get("ms") else None
            peak, plain_peak = m.get("peak_mib"), plain.get("peak_mib")
            low, high = (
                (m["q25_ms"], m["q75_ms"])
                if "q25_ms" in m
                else (m["min_cycle_ms"], m["max_cycle_ms"])
            )
            rows.append(
                [
                    entry["label"] + f" (batch {entry['batch']})",
                    name,
                    f"{m['ms']:.1f}",
                    f"{low:.0f}–{high:.0f}",
                    f"{t_ratio:.2f}" if t_ratio is not None else "–",
                    f"{peak:.1f}" if peak is not None else "–",
                    f"{peak / plain_peak:.2f}" if peak is not None and plain_peak else "–",
                ]
            )
    return "\n".join(render_table(header, rows, markdown, n_left=2))


def format_report(results: dict[str, Any], markdown: bool = False) -> str:
    """Settings, the table, notes on the statistics, and the targets."""
    s = results["settings"]
    env = results["environment"]
    lines = [
        f"adaloss speed — {env['date']}, torch {env['torch']}, {s['device']} "
        f"({env['device_name']}), {s['threads']} thread(s); base optimizer SGD "
        f"(lr {s['lr']}, momentum {s['momentum']}); {s['warmup']} warm-up step(s); "
        f"timed steps per method: {s['steps_by_model']}, interleaved over {s['rounds']} rounds.",
        "",
        format_speed_table(results, markdown=markdown),
        "",
        "ms/step: median over single steps (spread: quartiles); for ENGINE/K the mean over "
        "complete K-step cycles (spread: fastest–slowest cycle)."
        + (
            f" peak MiB: all live PyTorch tensors at the peak of {s['memory_steps']} measured "
            f"steps ({s['memory_source']}), in a fresh process per row."
            if s["memory_source"]
            else " Memory not measured (--no-memory)."
        ),
    ]
    load = env.get("load_average_start")
    if load is not None:
        lines.append(
            f"Load average (1, 5, 15 min) at start {load}, at end {env.get('load_average_end')}."
        )
    if s.get("warning"):
        lines.append("Warning: " + s["warning"])
    skipped = {
        f"{model}/{name}": m["skipped_steps"]
        for model, entry in results["models"].items()
        for name, m in entry["methods"].items()
        if m.get("skipped_steps")
    }
    if skipped:
        lines.append(f"Steps rejected as non-finite (timings include them): {skipped}")
    if results["targets"]:
        lines += ["", "Targets:"]
        for c in results["targets"]:
            mark = "met" if c["met"] else "NOT met"
            lines.append(
                f"{'- ' if markdown else '  '}{c['model']}: {c['target']}: "
                f"{c['ratio']:.2f} (limit {c['limit']}) — {mark}"
            )
    return "\n".join(lines)
