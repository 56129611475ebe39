"""How dL_val/dϕ is computed: one module per engine, one shared contract.

Both engines take the training forward's output ``out`` (still attached to θ_t)
and return a :class:`Hypergradient` without changing anything: the optimizer
checks it for non-finite values and only then commits θ_{t+1}, the optimizer
state and the meta step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from adaloss.distributed import Replicas
from adaloss.inner import DifferentiableUpdate, NewState
from adaloss.modelcalls import RNGReplay, call, running_stats_frozen
from adaloss.objective import Objective, evaluate, fixed_weights
from adaloss.precision import in_full_precision
from adaloss.steptrace import StepLengthTrace
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
    replicas: Replicas = field(default_factory=Replicas)  # the ranks whose batches add up
    grad_scale: float = 1.0  # S (float16): backward passes through the model run at S×
    # Where L_T is measured: "step" at θ_{t+1} (the paper's), "momentum" at θ_t + H·U with
    # H = 1/(1−β) per parameter, where the step's momentum eventually carries θ; a number:
    # that H for every parameter.
    horizon: str | float = "step"
    # This rank's L_T counts this much: its validation rows × ranks / all ranks' rows, so
    # that ranks with unequal validation parts (``check_share``) average to the whole
    # batch's mean; 0 for a rank with no rows of its own (it evaluates one at weight 0).
    val_weight: float = 1.0
    # a of the learned step length r = e^a (``adaloss.steplength``): the update is r·U and
    # the engines return dL_T/da after dL_T/dϕ; None: r = 1, nothing learned.
    log_step: torch.Tensor | None = None
    # dθ/da carried from earlier steps (``lr_horizon``, ``adaloss.steptrace``); None: the
    # step length's hypergradient is this step's alone
    trace: StepLengthTrace | None = None
    # ``keep_fit`` (``adaloss.keepfit``): also differentiate L_T on the training batch at
    # the measured point and project the meta-gradient off the directions that raise it
    # (True) or drop a meta-gradient that would raise it ("agree")
    keep_fit: bool | str = False

    def __post_init__(self) -> None:
        if self.objective is not None:  # the weights the step's objective was evaluated with
            self.loss_scale = self.objective.loss_scale
            self.task_weight = self.objective.task_weight

    def learned_loss(self, out: torch.Tensor) -> torch.Tensor:
        """The base objective s·M_ϕ + c·L_T, differentiable in ``out`` and ϕ, in float32."""
        return in_full_precision(
            base_objective, out, self.y, self.loss, self.task, self.loss_scale, self.task_weight
        )

    def output_objective(self, out: torch.Tensor) -> Objective:
        """M̃ and its output gradients at ``out``, with h a function of ϕ."""
        if self.objective is not None:
            return self.objective
        weights = fixed_weights(self.loss_scale, self.task_weight)
        return evaluate(self.loss, self.task, out, self.y, weights=weights, differentiable=True)

    def horizons(self) -> list[float] | None:
        """H per parameter, or None for the one-step objective (H = 1 everywhere)."""
        if self.horizon == "step":
            return None
        if self.horizon == "momentum":
            horizons = self.update.momentum_horizons()
        else:
            horizons = [float(self.horizon)] * len(self.update.params())
        return None if all(h == 1.0 for h in horizons) else horizons

    def lookahead(self, params: Tensors, updates: Tensors, horizons: list[float]) -> Tensors:
        """θ_t + H·U: where a horizon longer than one step measures the meta-objective."""
        return tuple(p + h * u for p, h, u in zip(params, horizons, updates, strict=True))

    def validation_loss(self, new_params: Tensors) -> torch.Tensor:
        """L_T on the validation batch at θ_{t+1}; BatchNorm statistics stay as they are.

        The model stays in its current (train) mode: BatchNorm normalizes with the
        validation batch's statistics and dropout is active, as in the paper's
        implementation, which differentiates the train-mode model throughout.
        """
        with running_stats_frozen(self.model):
            loss = self.task.loss(call(self.model, self.names, new_params, self.x_val), self.y_val)
        return loss if self.val_weight == 1.0 else loss * self.val_weight

    def training_loss(self, new_params: Tensors) -> torch.Tensor:
        """L_T on the step's training batch at θ_{t+1} (``keep_fit``), in the same mode as
        :meth:`validation_loss`."""
        with running_stats_frozen(self.model):
            return self.task.loss(call(self.model, self.names, new_params, self.x), self.y)


@dataclass
class Hypergradient:
    """What an engine computed for one step; nothing is applied yet."""

    learned_loss: torch.Tensor
    base_grads: Tensors  # g, or per-tensor sums of it: all the finiteness check reads
    new_params: Tensors  # θ_{t+1}, detached
    new_state: NewState
    task_loss: torch.Tensor  # L_T(θ_{t+1}) on the validation batch
    meta_grads: Tensors  # dL_T/dϕ (with ``keep_fit``: projected off the training batch's)
    objective: Objective | None = None  # the step's base objective (its weights s, c)
    trace: tuple | None = None  # (Z_{t+1}, Z^s_{t+1}) for ``lr_horizon``, committed with θ


def base_objective(
    out, y, loss: nn.Module, task: Task, loss_scale=None, task_weight=None
) -> torch.Tensor:
    """M_ϕ(y, out) (times the guard's ``loss_scale`` s), plus ``task_weight``·L_T when the
    guard mixes the task loss in."""
    value = loss(*task.learned_loss_inputs(out, y))
    if loss_scale is not None:
        value = loss_scale * value
    if task_weight is not None:
        value = value + task_weight * task.loss(out, y)
    return value


def scaled_grad(
    outputs, inputs, scale: float = 1.0, grad_outputs=None, create_graph=False, retain_graph=None
):
    """``torch.autograd.grad`` (None -> zeros) of ``scale``× the objective, divided by
    ``scale``: loss scaling for float16 backward passes (exact for powers of two).

    Autocast is off while it runs: a backward called under autocast runs the matrix products
    of float32 forward operations (the loss network's, and with ``create_graph`` the double
    backward's) in the low precision, which cost the unroll engine 30 % of g's accuracy on
    LeNet-5 in bfloat16 (BENCHMARKS.md, "bf16 and the unroll engine"). Operations the model
    ran in low precision keep it: their saved tensors have that dtype."""
    if scale != 1.0:
        if grad_outputs is None:
            outputs = outputs * scale
        else:
            grad_outputs = grad_outputs * scale
    with torch.autocast(outputs.device.type, enabled=False):
        grads = torch.autograd.grad(
            outputs,
            inputs,
            grad_outputs,
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
        )
    grads = grads_or_zeros(grads, inputs)
    return grads if scale == 1.0 else tuple(g / scale for g in grads)


def base_gradient(
    objective: Objective, out: torch.Tensor, params, grad_scale: float, replicas: Replicas
) -> tuple[torch.Tensor, Tensors]:
    """(M̃, g = J_fᵀ·∂M̃/∂f), the whole batch's: the model backpropagated once at
    ``grad_scale``× (float16), then averaged over the ranks (the identity alone)."""
    output_grad = objective.output_grad.to(out.dtype)
    grads = scaled_grad(out, params, grad_scale, grad_outputs=output_grad)
    learned, *grads = replicas.mean((objective.value, *grads))
    return learned, tuple(grads)


def grads_or_zeros(grads, inputs) -> Tensors:
    """``torch.autograd.grad(..., allow_unused=True)`` with None replaced by zeros."""
    return tuple(
        torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)
    )


def meta_gradient(
    objective: torch.Tensor,
    meta_params: list[nn.Parameter],
    scale: float = 1.0,
    retain_graph: bool | None = None,
) -> Tensors:
    """d objective / dϕ; empty for a parameter-free loss (then only θ moves)."""
    if not meta_params:
        return ()
    return scaled_grad(objective, meta_params, scale, retain_graph=retain_graph)


def validation_gradient(
    step: MetaStep, new_params: Tensors, on_training_batch: bool = False
) -> tuple[torch.Tensor, Tensors]:
    """L_T at θ_{t+1} on the validation batch and v = ∇_θ L_T there, cut from ϕ's graph
    (``on_training_batch``: on the step's training batch, for ``keep_fit``).

    Both are the whole batch's: averaged over the ranks of a data-parallel run.
    """
    leaves = tuple(p.detach().requires_grad_() for p in new_params)
    measure = step.training_loss if on_training_batch else step.validation_loss
    task_loss = measure(leaves)
    v = scaled_grad(task_loss, leaves, step.grad_scale)
    task_loss, *v = step.replicas.mean((task_loss.detach(), *v))
    return task_loss, tuple(v)
