"""Offline initialization of the meta-parameters (ML3; paper Algorithms 1 and 3).

Every outer iteration starts again from θ_0 with fresh optimizer state, takes
``inner_steps`` differentiable base steps and moves ϕ to lower the task loss
that follows. One inner step uses the optimizer's own hypergradient engine;
more are unrolled through TorchOpt's update.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from adaloss.hypergrad import Tensors, meta_gradient, unroll
from adaloss.modelcalls import RNGReplay, call, restore_buffers, snapshot_running_stats

if TYPE_CHECKING:
    from adaloss.optimizer import OnlineMetaOptimizer


def _unrolled(opt: OnlineMetaOptimizer, batches, x_val, y_val) -> tuple[Tensors, torch.Tensor]:
    """Hypergradient through several differentiable base steps from the current θ."""
    x, y = batches[0]
    step = opt._meta_step(x, y, x_val, y_val, RNGReplay(opt.device))
    params, previous = tuple(step.params), None
    for x, y in batches:
        step.y = y
        out = call(step.model, step.names, params, x)
        opt.task.check_outputs(out, x.shape[0])
        _, _, params, previous = unroll.differentiable_step(step, params, out, previous)
    task_loss = step.validation_loss(params)
    return meta_gradient(task_loss, step.meta_params), task_loss.detach()


def run_initialization(
    opt: OnlineMetaOptimizer,
    train_batches: Iterable,
    val_batches: Iterable | None,
    steps: int,
    meta_lr: float,
    inner_steps: int,
    progress: bool,
) -> list[float]:
    from adaloss.optimizer import _all_finite, cycle

    params = opt.update.params()
    theta0 = [p.detach().clone() for p in params]
    stats0 = snapshot_running_stats(opt.model)
    # Nothing below writes to these tensors: the outer iterations never commit a step.
    state0 = {p: dict(s) for p, s in opt.base_optimizer.state.items()}
    meta_optimizer = torch.optim.Adam(opt.meta_params, lr=meta_lr)
    train = cycle(train_batches)
    val = cycle(val_batches) if val_batches is not None else None

    def reset() -> None:
        with torch.no_grad():
            for p, p0 in zip(params, theta0, strict=True):
                p.copy_(p0)
        restore_buffers(stats0)
        opt.base_optimizer.state.clear()

    losses: list[float] = []
    skipped = 0
    try:
        for _ in tqdm(range(steps), disable=not progress, desc="initialize", leave=False):
            reset()
            batches = [next(train) for _ in range(inner_steps)]
            x_val, y_val = next(val) if val is not None else batches[-1]
            for x, y in batches:
                opt._check_batch(x, y, x_val, y_val)
            if inner_steps == 1:
                ((x, y),) = batches
                hg, _ = opt._forward_and_hypergradient(x, y, x_val, y_val)
                meta_grads, task_loss = hg.meta_grads, hg.task_loss
            else:
                meta_grads, task_loss = _unrolled(opt, batches, x_val, y_val)
            if not _all_finite([task_loss, *meta_grads]):
                skipped += 1
                continue
            for phi, g in zip(opt.meta_params, meta_grads, strict=True):
                phi.grad = g
            meta_optimizer.step()
            meta_optimizer.zero_grad(set_to_none=True)
            opt._after_meta_step()
            losses.append(float(task_loss))
    finally:
        reset()
        # The optimizer's state as it was: torch's Adagrad creates its state when it is
        # constructed, and its own step() (a non-meta step) fails without it.
        opt.base_optimizer.state.update(state0)
    if skipped:
        warnings.warn(
            f"adaloss: initialize() skipped {skipped} of {steps} outer steps with non-finite "
            "meta-gradients or task losses",
            RuntimeWarning,
            stacklevel=3,
        )
    return losses
