"""``adaloss speed``: wall time and peak memory per step, plain step vs the meta engines.

For each model every method gets its own copy of the same initial model (same seed),
the same base optimizer settings and the same sequence of batches. Timing runs in
this process, interleaved: the timed steps of each method are cut into short blocks
and the methods take turns block by block (the order rotates every round), so that
load from other jobs on the machine falls on all methods alike. Memory is measured
in a fresh subprocess per (model, method), so that no method sees another's tensors
or allocator history.

Methods: ``plain`` is ``loss.backward(); opt.step(); opt.zero_grad()`` with the task
loss; ``unroll`` and ``forward`` are ``MetaLossOptimizer.step`` with that engine and a
meta step every step; ``ENGINE/K`` (e.g. ``forward/10``) takes a meta step every K-th
step only. A method with a meta step every step reports the median time of single
steps; ``ENGINE/K`` reports the mean time per step over complete K-step cycles (a
median over single steps would hide the one expensive step in every K).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MIB = 2**20
DEFAULT_METHODS = ("plain", "unroll", "forward", "forward/10")
RESULT_MARKER = "ADALOSS_SPEED_MEMORY "


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: timm entrypoint, input shape, batch size and task."""

    timm_name: str
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    batch: int
    outputs: int
    regression: bool
    steps: int  # default number of timed steps (per method with a meta step every step)
    label: str


MODELS: dict[str, ModelSpec] = {
    "lenet5": ModelSpec(
        "adaloss_lenet5", {"num_classes": 10}, (1, 28, 28), 128, 10, False, 40, "LeNet-5"
    ),
    "resnet18": ModelSpec(
        "adaloss_resnet18_cifar",
        {"num_classes": 10},
        (3, 32, 32),
        64,
        10,
        False,
        8,
        "ResNet-18 (CIFAR)",
    ),
    # The paper's regression MLP (two hidden layers of 1000 units) on Diabetes-sized input.
    "mlp": ModelSpec(
        "adaloss_mlp", {"in_features": 10, "num_classes": 1}, (10,), 128, 1, True, 40, "MLP"
    ),
}


@dataclass(frozen=True)
class Method:
    """A way to take one training step: ``plain``, or an engine with a meta step every k."""

    name: str
    engine: str | None  # None: the plain optimizer step on the task loss
    meta_every: int = 1

    @property
    def cycle(self) -> int:
        """Steps that make one complete schedule (1, or K for ``ENGINE/K``)."""
        return self.meta_every


def parse_method(name: str) -> Method:
    """``plain``, ``forward``, ``unroll``, or ``forward/K`` / ``unroll/K`` (meta step every K)."""
    if name == "plain":
        return Method(name, None)
    engine, _, every = name.partition("/")
    if engine not in ("forward", "unroll"):
        raise ValueError(f"unknown method {name!r}; use plain, forward, unroll or forward/K")
    k = 1
    if every:
        try:
            k = int(every)
        except ValueError:
            k = 0
        if k < 1:
            raise ValueError(f"method {name!r}: K in {engine}/K must be an integer >= 1")
    return Method(name, engine, k)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def default_threads() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- building one method's step --------------------------------------------------------------


def make_batches(
    spec: ModelSpec, batch: int, count: int, seed: int, device: torch.device
) -> list[tuple[torch.Tensor, ...]]:
    """``count`` fixed (x, y, x_val, y_val) batches of random data; every method cycles them."""
    g = torch.Generator().manual_seed(seed)

    def inputs() -> torch.Tensor:
        return torch.randn(batch, *spec.input_shape, generator=g)

    def targets() -> torch.Tensor:
        if spec.regression:
            return torch.rand(batch, spec.outputs, generator=g)
        return torch.randint(0, spec.outputs, (batch,), generator=g)

    out = []
    for _ in range(count):
        x, y, x_val, y_val = inputs(), targets(), inputs(), targets()
        out.append(tuple(t.to(device) for t in (x, y, x_val, y_val)))
    return out


class Runner:
    """One (model, method): its own model copy, optimizers and position in the batch stream."""

    def __init__(
        self,
        spec: ModelSpec,
        method: Method,
        batches: list[tuple[torch.Tensor, ...]],
        device: torch.device,
        lr: float,
        momentum: float,
        seed: int,
    ) -> None:
        import timm

        import adaloss
        import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_* models)

        torch.manual_seed(seed)  # every method starts from the same θ_0 (and ϕ_0)
        self.model = timm.create_model(spec.timm_name, **spec.kwargs).to(device).train()
        self.task = adaloss.Regression(spec.outputs) if spec.regression else None
        if self.task is None:
            self.task = adaloss.Classification(spec.outputs)
        self.base = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        self.method = method
        self.opt = None
        if method.engine is not None:
            self.opt = adaloss.MetaLossOptimizer(
                self.model,
                self.base,
                self.task,
                hypergrad=method.engine,
                meta_every=method.meta_every,
            )
        self.batches = batches
        self.steps = 0
        torch.manual_seed(seed + 1)  # the same dropout stream for every method

    def step(self) -> None:
        x, y, x_val, y_val = self.batches[self.steps % len(self.batches)]
        if self.opt is None:
            loss = self.task.loss(self.model(x), y)
            loss.backward()
            self.base.step()
            self.base.zero_grad()
        else:
            self.opt.step(x, y, x_val, y_val)
        self.steps += 1

    def align_to_meta_step(self) -> None:
        """Advance the meta schedule so that the next step is a meta step (memory runs only)."""
        if self.opt is not None and self.opt.meta_every > 1:
            k = self.opt.meta_every
            self.opt.steps = math.ceil(self.opt.steps / k) * k

    @property
    def skipped(self) -> int:
        return self.opt.skipped_steps if self.opt is not None else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- timing ----------------------------------------------------------------------------------


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
        _sync(device)
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
                _sync(device)
                start = time.perf_counter()
                runner.step()
                _sync(device)
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


# -- memory (one subprocess per model and method) --------------------------------------------


def _profiler_peak(prof, window: str) -> tuple[int, int]:
    """(live bytes when ``window`` began, peak live bytes inside it) from PyTorch's CPU allocator.

    The profiler logs every allocation and free of PyTorch's CPU allocator as a
    ``[memory]`` event with a signed size; their running sum, in time order, is the
    number of bytes held by tensors. It was started before the model was built, so
    the sum counts everything: parameters, optimizer state, batches, activations.
    """
    events = prof.profiler.kineto_results.events()
    marks = [e for e in events if e.name() == window]
    if not marks:
        raise RuntimeError(f"profiler lost the {window!r} annotation")
    begin = min(e.start_ns() for e in marks)
    end = max(e.end_ns() for e in marks)
    mem = sorted(
        (e.start_ns(), e.nbytes())
        for e in events
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    live = at_begin = peak = 0
    started = False
    for t, nbytes in mem:
        if t > end:
            break
        if not started and t >= begin:
            started, at_begin, peak = True, live, live
        live += nbytes
        if started:
            peak = max(peak, live)
    if not started:
        at_begin = peak = live
    return at_begin, peak


def measure_memory(config: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of one (model, method), in this process (call it in a fresh one).

    ``peak_mib`` is the peak of bytes held by PyTorch tensors during the measured
    steps, everything included: parameters, optimizer state, batches, activations,
    gradients, the engines' temporaries. On CUDA it is ``torch.cuda.max_memory_allocated``
    after ``reset_peak_memory_stats``; on CPU it comes from ``torch.profiler``
    (``profile_memory=True``), started before the model is built, which logs every
    allocation and free of PyTorch's CPU allocator. Neither sees allocator caching
    or fragmentation, so the numbers compare engines, not allocators. The process's
    resident set size (``ru_maxrss``, VmHWM) was tried and rejected: glibc's malloc
    keeps freed blocks for reuse, so after one warm-up step a plain step and a meta
    step both showed ≈ 0 MiB of RSS growth while their tensor peaks differ by 2×.
    ``state_mib`` is what was live just before the measured steps (θ, optimizer
    state, batches). For ``ENGINE/K`` the schedule is advanced so that the measured
    steps start with a meta step; the peak covers it and the plain steps after it.
    """
    torch.set_num_threads(config["threads"])
    device = torch.device(config["device"])
    spec = MODELS[config["model"]]
    method = parse_method(config["method"])
    steps, warmup = config["steps"], max(config["warmup"], 2 if method.cycle > 1 else 0)

    def build() -> Runner:
        batches = make_batches(spec, config["batch"], 4, config["seed"], device)
        return Runner(
            spec, method, batches, device, config["lr"], config["momentum"], config["seed"]
        )

    def run(runner: Runner, n: int) -> None:
        for _ in range(n):
            runner.step()
        _sync(device)

    result: dict[str, Any] = {"measured_steps": steps}
    if device.type == "cuda":
        runner = build()
        run(runner, warmup)
        runner.align_to_meta_step()
        gc.collect()
        torch.cuda.reset_peak_memory_stats(device)
        result["state_mib"] = torch.cuda.memory_allocated(device) / MIB
        run(runner, steps)
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / MIB
        result["peak_source"] = "torch.cuda.max_memory_allocated"
        return result

    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        runner = build()
        run(runner, warmup)
        runner.align_to_meta_step()
        with record_function("adaloss_speed_measured"):
            run(runner, steps)
    at_begin, peak = _profiler_peak(prof, "adaloss_speed_measured")
    del prof
    result.update(
        state_mib=at_begin / MIB,
        peak_mib=peak / MIB,
        peak_source="torch.profiler CPU allocator events",
    )
    result["skipped_steps"] = runner.skipped
    return result


def _memory_worker_main(argv: Sequence[str]) -> int:
    config = json.loads(argv[0])
    result = measure_memory(config)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


def memory_in_subprocess(config: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run :func:`measure_memory` in a fresh Python process and return its result."""
    code = "import sys; from adaloss.bench.speed import _memory_worker_main as m; m(sys.argv[1:])"
    env = {**os.environ, "OMP_NUM_THREADS": str(config["threads"])}
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    raise RuntimeError(
        f"memory measurement of {config['model']} / {config['method']} failed "
        f"(exit code {proc.returncode}):\n{tail}"
    )


# -- report ----------------------------------------------------------------------------------

TARGETS = (
    "forward ≤ 2.5× plain (LeNet-5, ResNet-18)",
    "forward ≤ 0.65× unroll (LeNet-5, ResNet-18)",
    "forward/10 ≤ 1.3× plain",
    "forward peak memory ≤ 1.2× plain",
)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's speed targets, for every model where the needed methods were measured."""
    checks = []
    for model, rows in results["models"].items():
        methods = rows["methods"]

        def ms(name: str, methods: dict = methods) -> float | None:
            return methods[name]["ms"] if name in methods else None

        def mem(name: str, methods: dict = methods) -> float | None:
            return methods.get(name, {}).get("peak_mib")

        candidates = []
        if model in ("lenet5", "resnet18"):
            candidates += [
                (TARGETS[0], ms("forward"), ms("plain"), 2.5),
                (TARGETS[1], ms("forward"), ms("unroll"), 0.65),
            ]
        candidates += [
            (TARGETS[2], ms("forward/10"), ms("plain"), 1.3),
            (TARGETS[3], mem("forward"), mem("plain"), 1.2),
        ]
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


def format_table(results: dict[str, Any], markdown: bool = False) -> str:
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
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


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
        format_table(results, markdown=markdown),
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


def _environment(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = [round(v, 2) for v in os.getloadavg()]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
        "load_average_start": load,
    }


# -- command line ----------------------------------------------------------------------------


def _load_warning(threads: int, device: torch.device) -> str | None:
    """A note when other processes already keep the cores busy (OpenMP threads then stall)."""
    if device.type != "cpu":
        return None
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    cores = default_threads()
    if load + threads > cores + 0.5:
        return (
            f"the 1-minute load average is {load:.1f} on {cores} core(s) before starting "
            f"{threads} thread(s): other processes compete for the cores"
            + (
                ", and every parallel op then waits for descheduled threads, which inflates "
                "many short ops most (ratios to plain grow); prefer a quiet machine or --threads 1"
                if threads > 1
                else "; times are inflated and noisier"
            )
        )
    return None


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adaloss speed``."""
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated, from {', '.join(MODELS)} (default: all)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated: plain, forward, unroll, forward/K, unroll/K (meta step every K); "
        f"default {','.join(DEFAULT_METHODS)}",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per method (default per model: "
        + ", ".join(f"{k} {v.steps}" for k, v in MODELS.items())
        + "); ENGINE/K times max(2, ceil(N/K)) whole K-step cycles",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaving rounds the timed steps are cut into"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch.set_num_threads (default: all cores, here {default_threads()})",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--batch", type=int, default=None, help="override every model's batch")
    parser.add_argument("--lr", type=float, default=0.01, help="base SGD learning rate (0.01)")
    parser.add_argument("--momentum", type=float, default=0.9, help="base SGD momentum (0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--memory-steps", type=int, default=2, help="steps whose peak memory is measured (2)"
    )
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the memory subprocesses (time only)"
    )
    parser.add_argument("--markdown", action="store_true", help="Markdown table")
    parser.add_argument("--json", metavar="PATH", help="also save all results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every requested (model, method); return the results as one dictionary."""
    models = _split(args.models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    methods = [parse_method(name) for name in _split(args.methods)]
    if not methods:
        raise ValueError("no methods given")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available")
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    warning = _load_warning(threads, device)
    if warning:
        print(f"adaloss speed: warning: {warning}", file=sys.stderr, flush=True)
    if args.steps is not None and args.steps < 1:
        raise ValueError("--steps must be >= 1")

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[adaloss speed] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "environment": _environment(device),
        "settings": {
            "models": models,
            "methods": [m.name for m in methods],
            "device": str(device),
            "threads": threads,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "lr": args.lr,
            "momentum": args.momentum,
            "base_optimizer": f"torch.optim.SGD(lr={args.lr}, momentum={args.momentum})",
            "seed": args.seed,
            "memory_steps": args.memory_steps,
            "memory_source": (
                "torch.cuda.max_memory_allocated"
                if device.type == "cuda"
                else "torch.profiler, PyTorch CPU allocator"
            )
            if not args.no_memory
            else None,
            "steps_by_model": {},
            "warning": warning,
            "options": {
                k: v
                for k, v in vars(args).items()
                if isinstance(v, (str, int, float, bool, type(None)))
            },
        },
        "models": {},
    }
    for model in models:
        spec = MODELS[model]
        batch = args.batch or spec.batch
        steps = args.steps or spec.steps
        results["settings"]["steps_by_model"][model] = steps
        batches = make_batches(spec, batch, 4, args.seed, device)
        progress(f"{model}: building {len(methods)} model copies (batch {batch})")
        runners = {
            m.name: Runner(spec, m, batches, device, args.lr, args.momentum, args.seed)
            for m in methods
        }
        times = time_interleaved(
            runners,
            steps,
            args.warmup,
            args.rounds,
            device,
            lambda s, m=model: progress(f"{m}: {s}"),
        )
        entry: dict[str, Any] = {
            "label": spec.label,
            "batch": batch,
            "input_shape": list(spec.input_shape),
            "task": f"Regression({spec.outputs})"
            if spec.regression
            else f"Classification({spec.outputs})",
            "methods": {},
        }
        for m in methods:
            summary = summarize_times(m, times[m.name])
            summary["times_ms"] = [t * 1e3 for t in times[m.name]]
            summary["skipped_steps"] = runners[m.name].skipped
            entry["methods"][m.name] = summary
        del runners
        gc.collect()
        if not args.no_memory:
            for m in methods:
                progress(f"{model}: memory of {m.name} (subprocess)")
                config = {
                    "model": model,
                    "method": m.name,
                    "device": str(device),
                    "threads": threads,
                    "batch": batch,
                    "steps": args.memory_steps,
                    "warmup": args.warmup,
                    "lr": args.lr,
                    "momentum": args.momentum,
                    "seed": args.seed,
                }
                memory = memory_in_subprocess(config)
                skipped = memory.pop("skipped_steps", 0)
                entry["methods"][m.name].update(memory)
                entry["methods"][m.name]["skipped_steps"] += skipped
        results["models"][model] = entry
    with contextlib.suppress(OSError, AttributeError):
        results["environment"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["targets"] = check_targets(results)
    return results


def run_from_args(args: argparse.Namespace) -> int:
    """``adaloss speed``: measure, print the report, optionally save JSON. Returns 0, or 2."""
    try:
        results = run_speed(args)
    except ValueError as err:
        print(f"adaloss speed: error: {err}", file=sys.stderr)
        return 2
    print(format_report(results, markdown=args.markdown))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adaloss.bench.speed``: the same as ``adaloss speed``."""
    parser = argparse.ArgumentParser(prog="adaloss speed", description=__doc__.splitlines()[0])
    add_speed_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
