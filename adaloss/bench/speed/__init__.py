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
step only; a ``+twin`` suffix (``forward+twin``) also steps the plain-trained twin of
``handover`` (never handing over), and ``+check`` adds ``check_every=200``'s checks on
the validation batches to it. A method with a meta step every step reports the
median time of single steps; ``ENGINE/K`` reports the mean time per step over complete
K-step cycles (a median over single steps would hide the one expensive step in every K).

The package, one idea per module: ``methods`` (models, methods, the runner that takes a
step), ``timing`` (interleaved rounds, per-step statistics), ``memory`` (profiler peaks in
a subprocess), ``report`` (targets and tables), ``run`` (the command's options and one measurement);
the command itself is ``adaloss.bench.cli``.
"""

from adaloss.bench.speed.memory import (
    MIB,
    RESULT_MARKER,
    _memory_worker_main,
    _profiler_peak,
    measure_memory,
    memory_in_subprocess,
)
from adaloss.bench.speed.methods import (
    DEFAULT_METHODS,
    MODELS,
    Method,
    ModelSpec,
    Runner,
    default_threads,
    make_batches,
    parse_method,
)
from adaloss.bench.speed.report import (
    TARGETS,
    check_speed_targets,
    format_report,
    format_speed_table,
)
from adaloss.bench.speed.run import add_speed_arguments, run_speed
from adaloss.bench.speed.timing import summarize_times, time_interleaved, timed_steps

__all__ = [
    "DEFAULT_METHODS",
    "MIB",
    "MODELS",
    "RESULT_MARKER",
    "TARGETS",
    "Method",
    "ModelSpec",
    "Runner",
    "_memory_worker_main",
    "_profiler_peak",
    "add_speed_arguments",
    "check_speed_targets",
    "default_threads",
    "format_report",
    "format_speed_table",
    "make_batches",
    "measure_memory",
    "memory_in_subprocess",
    "parse_method",
    "run_speed",
    "summarize_times",
    "time_interleaved",
    "timed_steps",
]
