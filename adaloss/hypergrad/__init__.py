"""How dL_val/dϕ is computed: one module per engine, one shared contract.

Both engines take the training forward's output ``out`` (still attached to θ_t)
and return a :class:`Hypergradient` without changing anything: the optimizer
checks it for non-finite values and only then commits θ_{t+1}, the optimizer
state and the meta step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adaloss.inner import DifferentiableUpdate, NewState
from adaloss.modelcalls import RNGReplay, call, running_stats_frozen
from adaloss.objective import Objective, evaluate, fixed_weights
from adaloss.tasks import Task

Tensors = tuple[torch.Tensor, ...]


@dataclass
class MetaStep:
    """The inputs of one meta step."""

    model: nn.Module
    names: list[str]  # functional_call names of ``params``
    params: list[nn.Parameter]  # θ_t: the trainable parameters the optimizer updates
    update: DifferentiableUpdate
    loss: nn.Module  # M_ϕ
    meta_params: list[nn.Parameter]  # ϕ
    task: Task
    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    rng: RNGReplay  # RNG state before the training forward
    # The base objective is M̃ = s·M_ϕ + c·L_T; s and c are the guard's, constants to ϕ.
    loss_scale: torch.Tensor | None = None  # s; None: 1 (no guard)
    task_weight: torch.Tensor | None = None  # c; None: 0 (no guard)
    # M̃'s derivatives at the training outputs with these weights, h differentiable in ϕ,
    # when the step computed them already (the guard needs h too); None: computed here.
    objective: Objective | None = None

    def learned_loss(self, out: torch.Tensor) -> torch.Tensor:
        """The base objective s·M_ϕ + c·L_T, differentiable in ``out`` and ϕ."""
        value = self.loss(*self.task.learned_loss_inputs(out, self.y))
        if self.loss_scale is not None:
            value = self.loss_scale * value
        if self.task_weight is not None:
            value = value + self.task_weight * self.task.loss(out, self.y)
        return value

    def output_objective(self, out: torch.Tensor) -> Objective:
        """M̃ and its output gradients at ``out``, with h a function of ϕ."""
        if self.objective is not None:
            return self.objective
        weights = fixed_weights(self.loss_scale, self.task_weight)
        return evaluate(self.loss, self.task, out, self.y, weights=weights, differentiable=True)

    def validation_loss(self, new_params: Tensors) -> torch.Tensor:
        """L_T on the validation batch at θ_{t+1}; BatchNorm statistics stay as they are.

        The model stays in its current (train) mode: BatchNorm normalizes with the
        validation batch's statistics and dropout is active, as in the paper's
        implementation, which differentiates the train-mode model throughout.
        """
        with running_stats_frozen(self.model):
            return self.task.loss(call(self.model, self.names, new_params, self.x_val), self.y_val)


@dataclass
class Hypergradient:
    """What an engine computed for one step; nothing is applied yet."""

    learned_loss: torch.Tensor
    base_grads: Tensors  # g, or per-tensor sums of it: all the finiteness check reads
    new_params: Tensors  # θ_{t+1}, detached
    new_state: NewState
    task_loss: torch.Tensor  # L_T(θ_{t+1}) on the validation batch
    meta_grads: Tensors  # dL_T/dϕ
    objective: Objective | None = None  # the step's base objective (its weights s, c)


def grads_or_zeros(grads, inputs) -> Tensors:
    """``torch.autograd.grad(..., allow_unused=True)`` with None replaced by zeros."""
    return tuple(
        torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)
    )


def meta_gradient(objective: torch.Tensor, meta_params: list[nn.Parameter]) -> Tensors:
    """d objective / dϕ; empty for a parameter-free loss (then only θ moves)."""
    if not meta_params:
        return ()
    return grads_or_zeros(
        torch.autograd.grad(objective, meta_params, allow_unused=True), meta_params
    )


def validation_gradient(step: MetaStep, new_params: Tensors) -> tuple[torch.Tensor, Tensors]:
    """L_T at θ_{t+1} on the validation batch and v = ∇_θ L_T there, cut from ϕ's graph."""
    leaves = tuple(p.detach().requires_grad_() for p in new_params)
    task_loss = step.validation_loss(leaves)
    v = grads_or_zeros(torch.autograd.grad(task_loss, leaves, allow_unused=True), leaves)
    return task_loss.detach(), v
