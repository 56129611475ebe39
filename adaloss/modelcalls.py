"""Calling a model the way the hypergradient engines need, without side effects.

The engines evaluate the model more than once per step (validation batch at
θ_{t+1}, the JVP re-run at θ_t). Only the training forward may update BatchNorm
running statistics, and a re-run must see the same dropout mask: these helpers
make both explicit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call


def parameter_names(model: nn.Module, params: Sequence[nn.Parameter]) -> list[str]:
    """Names under which ``params`` appear in ``model`` (for ``functional_call``)."""
    by_id = {id(p): name for name, p in model.named_parameters(remove_duplicate=True)}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(
            f"the base optimizer holds {len(missing)} tensor(s) that are not parameters of the "
            "model (e.g. param index "
            f"{missing[0]}); pass the optimizer built from model.parameters()"
        )
    return [by_id[id(p)] for p in params]


def call(model: nn.Module, names: Sequence[str], params: Sequence[torch.Tensor], x) -> torch.Tensor:
    """``model(x)`` with the named parameters replaced by ``params``."""
    return functional_call(model, dict(zip(names, params, strict=True)), (x,))


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` or a submodule runs through ``torch.compile``."""
    return any(
        type(m).__name__ == "OptimizedModule" or getattr(m, "_compiled_call_impl", None)
        for m in model.modules()
    )


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def running_stats_frozen(model: nn.Module) -> Iterator[None]:
    """Extra forwards leave BatchNorm running statistics untouched.

    In train mode a BatchNorm layer with ``track_running_stats=False`` normalizes
    with batch statistics exactly as the training forward did, but neither reads
    nor writes its buffers (no in-place update, so no functorch mutation errors).
    """
    layers = [m for m in batchnorm_layers(model) if m.training and m.track_running_stats]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


def snapshot_running_stats(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the BatchNorm buffers, so that a rejected step can put them back."""
    return [(b, b.detach().clone()) for m in batchnorm_layers(model) for b in m.buffers()]


def restore_buffers(snapshot: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, saved in snapshot:
            buffer.copy_(saved)


class RNGReplay:
    """Captures the RNG state before the training forward so a re-run draws the same masks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.accel = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def rewind(self) -> None:
        """Set the RNG back to the captured state for good (to redo a forward)."""
        torch.set_rng_state(self.cpu)
        if self.accel is not None:
            torch.cuda.set_rng_state(self.accel, self.device)

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body with the captured RNG state, then continue the stream as before."""
        now_cpu = torch.get_rng_state()
        now_accel = torch.cuda.get_rng_state(self.device) if self.accel is not None else None
        torch.set_rng_state(self.cpu)
        if self.accel is not None:
            torch.cuda.set_rng_state(self.accel, self.device)
        try:
            yield
        finally:
            torch.set_rng_state(now_cpu)
            if now_accel is not None:
                torch.cuda.set_rng_state(now_accel, self.device)
