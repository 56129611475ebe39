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
network (``adaloss.objective``); no device sync. Data-parallel, the norms and the inner
product are the whole batch's: each rank's sums over its own rows, added over the ranks
(one all-reduce of three numbers, on the device; none on a single process).
"""

from __future__ import annotations

import torch

from adaloss.distributed import Replicas


class TrustRegionGuard:
    """Keep the learned loss's output gradient within a factor ``bound`` of the task loss's."""

    def __init__(self, bound: float) -> None:
        if not bound > 0:
            raise ValueError(f"the guard's bound must be > 0, got {bound}")
        self.bound = float(bound)

    def weights(
        self, h: torch.Tensor, g: torch.Tensor, replicas: Replicas | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, c) from h = ∂M_ϕ/∂f and g = ∂L_T/∂f at the training outputs (both detached).

        The step computes h and g once (``adaloss.objective.evaluate``) and reuses h for
        its own backward, so the guard adds no pass through the loss network. With
        ``replicas`` (data-parallel) the sums are the whole batch's.
        """
        tiny = torch.finfo(h.dtype).tiny  # a vanishing gradient: nothing to bound, no 0/0
        # Each rank's h, g are 1/R of the whole batch's rows (means over R× the rows): the
        # factor cancels in every ratio below, so the ranks' plain sums are what one needs.
        sums = torch.stack([(g * g).sum(), (h * h).sum(), (h * g).sum()])
        g_sq, h_sq, hg = (replicas or Replicas()).sum([sums])[0]
        scale = (self.bound * g_sq.sqrt() / h_sq.sqrt().clamp_min(tiny)).clamp(max=1.0)
        alignment = scale * hg / g_sq.clamp_min(tiny)
        task_weight = (1.0 / self.bound - alignment).clamp(min=0.0)
        return scale, task_weight

    def __repr__(self) -> str:
        return f"TrustRegionGuard(bound={self.bound:g})"
