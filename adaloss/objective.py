"""The base objective of one step at the model's outputs, differentiated once.

A step trains on M̃ = s·M_ϕ + c·L_T, with the guard's weights s and c (s = 1, c = 0
without a guard). Three parts of a step need M̃'s derivatives with respect to the outputs
f: the guard chooses s and c from h = ∂M_ϕ/∂f and g = ∂L_T/∂f, the base gradient is
J_fᵀ·∂M̃/∂f, and the forward engine's meta-gradient needs h as a function of ϕ. One
forward and one backward through the loss network (and the task loss, with a guard) on
the (B, C) outputs give all three; the model itself is then backpropagated once.

Under autocast the loss network runs in float32 (autocast off, the outputs widened:
``adaloss.precision``), so h, g and ∂M̃/∂f are float32; the caller casts ∂M̃/∂f to the
outputs' dtype for the model's backward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from adaloss.precision import widened
from adaloss.tasks import Task

Weights = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Objective:
    """M̃ and its derivatives at one set of outputs."""

    value: torch.Tensor  # M̃ = s·M_ϕ + c·L_T, detached: the step's reported learned loss
    h: torch.Tensor  # ∂M_ϕ/∂f; a function of ϕ when evaluated with differentiable=True
    output_grad: torch.Tensor  # ∂M̃/∂f = s·h + c·g, detached: what backpropagates to θ
    loss_scale: torch.Tensor | None = None  # s (None: no guard, s = 1)
    task_weight: torch.Tensor | None = None  # c (None: no guard, c = 0)


def evaluate(
    loss: nn.Module,
    task: Task,
    out: torch.Tensor,
    y: torch.Tensor,
    inputs: Callable | None = None,
    weights: Callable[[torch.Tensor, torch.Tensor], Weights] | None = None,
    differentiable: bool = False,
) -> Objective:
    """M̃ at the outputs ``out`` (cut from the model's graph) with its output gradients.

    ``inputs(out, y)`` maps outputs and targets to the loss's arguments (default: the
    task's ``learned_loss_inputs``); ``weights(h, g)`` returns (s, c) (the guard's
    ``TrustRegionGuard.weights``); ``differentiable`` keeps h a function of ϕ.
    """
    inputs = task.learned_loss_inputs if inputs is None else inputs
    f = widened(out.detach()).requires_grad_()
    with torch.enable_grad(), torch.autocast(out.device.type, enabled=False):
        value = loss(*inputs(f, y))
        h = _output_grad(value, f, differentiable)
        if weights is None:
            return Objective(value.detach(), h, h.detach())
        task_loss = task.loss(f, y)
        g = _output_grad(task_loss, f, False)
    scale, task_weight = weights(h.detach(), g)
    return Objective(
        value=scale * value.detach() + task_weight * task_loss.detach(),
        h=h,
        output_grad=scale * h.detach() + task_weight * g,
        loss_scale=scale,
        task_weight=task_weight,
    )


def task_only(task: Task, out: torch.Tensor, y: torch.Tensor) -> Objective:
    """M̃ = L_T (s = 0, c = 1) without the loss network: a plain step's objective (the
    early stop's, ``adaloss.patience``), which no value of the learned loss can spoil."""
    f = widened(out.detach()).requires_grad_()
    with torch.enable_grad(), torch.autocast(out.device.type, enabled=False):
        task_loss = task.loss(f, y)
        g = _output_grad(task_loss, f, False)
    return Objective(
        value=task_loss.detach(),
        h=torch.zeros_like(g),
        output_grad=g,
        loss_scale=g.new_zeros(()),
        task_weight=g.new_ones(()),
    )


def fixed_weights(scale: torch.Tensor | None, task_weight: torch.Tensor | None):
    """``weights`` for :func:`evaluate` that returns given (s, c); None where neither is set."""
    if scale is None and task_weight is None:
        return None
    one = torch.ones(())
    return lambda h, g: (
        one.to(h) if scale is None else scale,
        torch.zeros_like(one).to(h) if task_weight is None else task_weight,
    )


def _output_grad(value: torch.Tensor, f: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """∂value/∂f; zeros when value does not depend on f (a constant learned loss)."""
    if not value.requires_grad:
        return torch.zeros_like(f)
    (grad,) = torch.autograd.grad(value, f, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(f) if grad is None else grad
