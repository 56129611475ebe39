"""Mixed precision: the learned loss in float32 under autocast, and fp16 loss scaling.

Under ``torch.autocast`` the model runs in bfloat16 or float16, but the loss network is
tiny and its outputs feed the meta-gradient: it is evaluated in float32 (autocast off, the
outputs widened), as autocast itself treats losses. In float16 small gradients flush to
zero in the backward passes through the model, so a step that runs under float16 autocast
multiplies what it differentiates by a scale S and divides the gradients by S (exact for
powers of two), with ``torch.amp.GradScaler``'s policy: halve S on overflow, and the step
is rejected like any non-finite one; double it after ``growth_interval`` clean steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

LOW = (torch.float16, torch.bfloat16)
LOSS_SCALES = ("auto", "dynamic", None)


def widened(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if it is bfloat16 or float16, else as it is."""
    return t.float() if t.dtype in LOW else t


def in_full_precision(fn: Callable[..., torch.Tensor], out: torch.Tensor, *args) -> torch.Tensor:
    """``fn(out, *args)`` with autocast off on ``out``'s device and ``out`` widened."""
    with torch.autocast(out.device.type, enabled=False):
        return fn(widened(out), *args)


def float16_autocast(device: torch.device) -> bool:
    """Whether code here runs under float16 autocast for ``device``."""
    kind = device.type
    return torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.float16


class DynamicLossScale:
    """The loss scale S of float16 steps, with ``torch.amp.GradScaler``'s defaults."""

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        self.scale = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.good_steps = 0
        self.overflows = 0

    def update(self, overflow: bool) -> None:
        """After a step at this scale: back off on overflow, grow after a clean stretch."""
        if overflow:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            self.overflows += 1
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "good_steps": self.good_steps, "overflows": self.overflows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.good_steps = int(state["good_steps"])
        self.overflows = int(state["overflows"])

    def __repr__(self) -> str:
        return f"DynamicLossScale(scale={self.scale:g}, growth_interval={self.growth_interval})"


class LossScaling:
    """When a step scales (``mode``: "auto" under float16 autocast, "dynamic" always, None
    never) and by how much; the scale is shared, so data-parallel ranks agree on it."""

    def __init__(self, mode: str | None = "auto") -> None:
        if mode not in LOSS_SCALES:
            raise ValueError(f"grad_scale must be one of {LOSS_SCALES}, got {mode!r}")
        self.mode = mode
        self.dynamic = DynamicLossScale()

    def scale_for(self, device: torch.device) -> float:
        """S for a step starting now on ``device`` (1.0: no scaling)."""
        on = self.mode == "dynamic" or (self.mode == "auto" and float16_autocast(device))
        return self.dynamic.scale if on else 1.0

    def rejected(self, scale: float, overflow: bool) -> bool:
        """A step taken at ``scale`` was rejected; whether for a float16 overflow (which
        halves the scale, and is expected now and then: that rejection stays quiet)."""
        if scale == 1.0 or not overflow:
            return False  # a non-finite loss is no overflow: the scale stays
        self.dynamic.update(overflow=True)
        return True

    def committed(self, scale: float) -> None:
        """A step taken at ``scale`` committed: one more clean step toward growth."""
        if scale != 1.0:
            self.dynamic.update(overflow=False)

    def state_dict(self) -> dict[str, Any]:
        return self.dynamic.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:  # checkpoints from before loss scaling have none
            self.dynamic.load_state_dict(state)
