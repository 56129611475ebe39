"""``adaloss speed``: its options and one measurement over models and methods."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import platform
import sys
from typing import Any

import torch

from adaloss.bench.speed.memory import memory_in_subprocess
from adaloss.bench.speed.methods import (
    DEFAULT_METHODS,
    DEFAULT_MODELS,
    MODELS,
    Runner,
    default_threads,
    make_batches,
    parse_method,
    split_list,
)
from adaloss.bench.speed.report import check_speed_targets
from adaloss.bench.speed.timing import summarize_times, time_interleaved


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
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated, from {', '.join(MODELS)} (default: {','.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated: plain, fixed (learned loss, ϕ fixed), forward, unroll, forward/K, "
        "unroll/K (meta step every K), any engine +twin (with handover's plain-trained twin) "
        "or +check (the twin and check_every=200's checks on the validation batches); "
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
    models = split_list(args.models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    methods = [parse_method(name) for name in split_list(args.methods)]
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
    results["targets"] = check_speed_targets(results)
    return results
