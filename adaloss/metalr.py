"""Meta-LR: the paper's baseline that meta-learns the base learning rate online.

Same machinery as AdaLFL (Appendix C.1, Algorithms 3 and 4), but the
meta-parameter is the learning rate α and the base loss is the task loss.
Every supported update is linear in the learning rate, θ_{t+1} = θ_t + α·U₁(g)
with U₁ the update at lr = 1, so the one-step hypergradient is exact and cheap:
dL_T/dα = ⟨∇_θ L_T(θ_{t+1}), U₁⟩ (no second-order terms, same for both engines).
With a horizon H (``horizon="momentum"``: 1/(1−β) per parameter group, as for AdaLFL) L_T is
read at θ_t + H·α·U₁ instead, and dL_T/dα = ⟨∇_θ L_T there, H·U₁⟩: with momentum, the
one-step objective cannot see that each step's update goes on 1/(1−β) times as far.
"""

from __future__ import annotations

import torch
from torch import nn

from adaloss.hypergrad import Hypergradient, MetaStep, scaled_grad, validation_gradient
from adaloss.online import OnlineMetaOptimizer
from adaloss.recipes import check_horizon
from adaloss.tasks import Task


class _TaskLoss(nn.Module):
    """The task loss as the base objective, evaluated on raw outputs."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.task.loss(outputs, targets)


class MetaLROptimizer(OnlineMetaOptimizer):
    """Train with the task loss while Adam adapts the base learning rate after every step.

    The learned rate α starts at ``param_groups[0]["lr"]``; a group whose lr differs
    keeps its ratio to it. After every meta step the groups' ``lr`` show the learned
    value, so Meta-LR owns the learning rate: do not attach a scheduler as well.
    ``initialize`` (Algorithm 3) supports ``inner_steps=1``, the paper's setting.
    ``horizon``: ``"step"`` (the paper's Meta-LR), ``"momentum"`` or a number H ≥ 1, as in
    ``MetaLossOptimizer``.
    """

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        task: Task,
        meta_optimizer: torch.optim.Optimizer | None = None,
        meta_lr: float = 1e-5,
        meta_every: int = 1,
        online: bool = True,
        horizon: str | float = "step",
    ) -> None:
        check_horizon(horizon)
        groups = base_optimizer.param_groups
        lr0 = float(groups[0]["lr"])
        if lr0 <= 0:
            raise ValueError(f"Meta-LR needs a positive initial learning rate, got {lr0}")
        reference = next(iter(model.parameters()), torch.empty(()))
        self.lr = nn.Parameter(torch.tensor(lr0, dtype=reference.dtype, device=reference.device))
        self.ratios = [float(g["lr"]) / lr0 for g in groups]
        self._task_loss = _TaskLoss(task)
        super().__init__(
            model, base_optimizer, task, [self.lr], meta_optimizer, meta_lr, meta_every, online
        )
        self.horizon = horizon
        if horizon == "momentum":
            self.update.momentum_horizons()  # a momentum of 1 or more fails here, not mid-run

    def _base_loss_module(self) -> nn.Module:
        return self._task_loss

    def _loss_inputs(self, out, y):
        return out, y

    def _hypergradient(self, step: MetaStep, out: torch.Tensor) -> Hypergradient:
        learned = self.task.loss(out, step.y)
        params = tuple(p.detach() for p in step.params)
        grads = scaled_grad(learned, step.params, step.grad_scale)
        learned, *grads = step.replicas.mean((learned.detach(), *grads))  # across ranks
        grads = tuple(grads)
        unit_updates, new_state = step.update.function(params, lr=1.0)(grads)
        groups = zip(self.ratios, step.update.groups(), strict=True)
        ratios = [ratio for ratio, group in groups for _ in group]  # one per parameter
        lr = self.lr.detach()
        new_params = tuple(
            p + lr * r * u for p, r, u in zip(params, ratios, unit_updates, strict=True)
        )
        horizons = step.horizons()  # None: L_T at θ_{t+1} itself
        if horizons is None:
            task_loss, v = validation_gradient(step, new_params)
            horizons = [1.0] * len(params)
        else:
            updates = tuple(n - p for n, p in zip(new_params, params, strict=True))
            task_loss, v = validation_gradient(step, step.lookahead(params, updates, horizons))
        d_lr = sum(
            h * r * (vi * u).sum()
            for h, r, vi, u in zip(horizons, ratios, v, unit_updates, strict=True)
        )
        return Hypergradient(
            learned_loss=learned,
            base_grads=grads,
            new_params=tuple(p.detach() for p in new_params),
            new_state=new_state,
            task_loss=task_loss,
            meta_grads=(torch.as_tensor(d_lr, dtype=self.lr.dtype).reshape(()),),
        )

    def _after_meta_step(self) -> None:
        for group, ratio in zip(self.base_optimizer.param_groups, self.ratios, strict=True):
            group["lr"] = float(self.lr.detach()) * ratio

    def initialize(
        self,
        train_batches,
        val_batches=None,
        steps=2500,
        meta_lr=1e-3,
        inner_steps=1,
        progress=False,
    ):
        if inner_steps != 1:
            raise ValueError(
                f"MetaLROptimizer.initialize supports inner_steps=1, got {inner_steps}"
            )
        return super().initialize(train_batches, val_batches, steps, meta_lr, 1, progress)

    def __repr__(self) -> str:
        horizon = "" if self.horizon == "step" else f", horizon={self.horizon!r}"
        return f"MetaLROptimizer(lr={float(self.lr.detach()):.3g}, task={self.task!r}{horizon})"
