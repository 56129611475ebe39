"""The divergence guard: a trust region on what the learned loss may do to the outputs.

What breaks a run is θ, not ϕ (BENCHMARKS.md): by the time the meta-objective rises, a
learned loss with a far-off minimum or a slope ~1000× the task loss's has already pushed
the model away. So the guard acts on every step, before θ moves. With f the model's raw
outputs on the training batch, h = ∂M_ϕ/∂f and g = ∂L_T/∂f, the step trains on

    M̃ = s·M_ϕ + c·L_T,   s = min(1, κ‖g‖/‖h‖),   c = max(0, 1/κ − s⟨h, g⟩/‖g‖²),

so that ‖s·h‖ ≤ κ‖g‖ (never more than κ times the task loss's force) and
⟨∂M̃/∂f, g⟩ ≥ ‖g‖²/κ (at least 1/κ of the task loss's own first-order descent on the
batch): a loss that pushes the outputs the wrong way is outvoted by the task loss in
proportion. s and c are constants to the hypergradient. Cost: the task loss's gradient
on the outputs and a few reductions; h comes from the step's own pass through the loss
network (``adaloss.objective``); no device sync.
"""

from __future__ import annotations

import torch


class TrustRegionGuard:
    """Keep the learned loss's output gradient within a factor ``bound`` of the task loss's."""

    def __init__(self, bound: float) -> None:
        if not bound > 0:
            raise ValueError(f"the guard's bound must be > 0, got {bound}")
        self.bound = float(bound)

    def weights(self, h: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, c) from h = ∂M_ϕ/∂f and g = ∂L_T/∂f at the training outputs (both detached).

        The step computes h and g once (``adaloss.objective.evaluate``) and reuses h for
        its own backward, so the guard adds no pass through the loss network.
        """
        tiny = torch.finfo(h.dtype).tiny  # a vanishing gradient: nothing to bound, no 0/0
        g_sq = (g * g).sum()
        scale = (self.bound * g_sq.sqrt() / h.norm().clamp_min(tiny)).clamp(max=1.0)
        alignment = scale * (h * g).sum() / g_sq.clamp_min(tiny)
        task_weight = (1.0 / self.bound - alignment).clamp(min=0.0)
        return scale, task_weight

    def __repr__(self) -> str:
        return f"TrustRegionGuard(bound={self.bound:g})"
