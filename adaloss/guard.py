"""The divergence guard: a trust region on how hard the learned loss may push the outputs.

What breaks a run is θ, not ϕ (BENCHMARKS.md): by the time the meta-objective rises, a
learned loss with a far-off minimum or a slope ~1000× the task loss's has already pushed
the model away. So the guard acts on every step, before θ moves: with f the model's raw
outputs on the training batch, it bounds ‖∂M_ϕ/∂f‖ ≤ κ·‖∂L_T/∂f‖ by scaling the learned
loss by s = min(1, κ‖∂L_T/∂f‖ / ‖∂M_ϕ/∂f‖) for this step (s is a constant to the
hypergradient). Cost: two backward passes through the loss network and the task loss on
the outputs only; no device sync.
"""

from __future__ import annotations

import torch
from torch import nn

from adaloss.tasks import Task


class ScaledLoss(nn.Module):
    """``scale · loss(pred, target)`` with ``scale`` a constant (detached) tensor."""

    def __init__(self, loss: nn.Module, scale: torch.Tensor) -> None:
        super().__init__()
        self.loss = loss
        self.scale = scale

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.scale * self.loss(pred, target)


class GradientScaleGuard:
    """Bound the learned loss's output gradient to ``bound`` times the task loss's."""

    def __init__(self, bound: float) -> None:
        if not bound > 0:
            raise ValueError(f"the guard's bound must be > 0, got {bound}")
        self.bound = float(bound)

    def scale(self, loss: nn.Module, task: Task, out: torch.Tensor, y: torch.Tensor):
        """s ∈ (0, 1] for this step's learned loss (a 0-dim tensor on the outputs' device)."""
        with torch.enable_grad():
            f = out.detach().requires_grad_()
            (learned,) = torch.autograd.grad(loss(*task.learned_loss_inputs(f, y)), f)
            f = out.detach().requires_grad_()
            (reference,) = torch.autograd.grad(task.loss(f, y), f)
        limit = self.bound * reference.norm()
        # tiny = the learned gradient vanishes: nothing to bound (and no 0/0).
        tiny = torch.finfo(learned.dtype).tiny
        return (limit / learned.norm().clamp_min(tiny)).clamp(max=1.0).detach()

    def __repr__(self) -> str:
        return f"GradientScaleGuard(bound={self.bound:g})"
