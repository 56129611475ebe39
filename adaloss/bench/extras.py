"""The optional dependencies behind the ``adaloss`` command, and the pip line that adds them.

``pip install adaloss`` brings the core only (torch, TorchOpt); the benchmark's data
sets, models and figures need the ``bench`` extra (pyproject.toml). The command
turns an import error of one of these modules into that one line instead of a trace.
"""

from __future__ import annotations

BENCH_INSTALL = "pip install 'adaloss[bench]'"
BENCH_MODULES = frozenset({"timm", "torchvision", "numpy", "sklearn", "scipy", "matplotlib"})
"""Top-level import names of the ``bench`` extra's distributions (``timm`` extra included)."""


def install_hint(err: ImportError) -> str | None:
    """The pip line that provides the module ``err`` failed to import; None if not ours to fix."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    return BENCH_INSTALL if name in BENCH_MODULES else None
