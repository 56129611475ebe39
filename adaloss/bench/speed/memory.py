"""Peak memory of one (model, method), measured in a fresh process so that no method sees
another's tensors or allocator history."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import torch

from adaloss.bench.speed.methods import MODELS, Runner, make_batches, parse_method, sync

MIB = 2**20
RESULT_MARKER = "ADALOSS_SPEED_MEMORY "


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
        sync(device)

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
    env = {**os.environ, "OMP_NUM_THREADS": str(config["threads"])}
    proc = subprocess.run(
        [sys.executable, "-m", "adaloss.bench.speed.memory_worker", json.dumps(config)],
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
