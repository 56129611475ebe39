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
from adaloss.modelcalls import RNGReplay, call, is_compiled
from adaloss.transaction import Transaction

if TYPE_CHECKING:
    from adaloss.optimizer import OnlineMetaOptimizer


def _unrolled(opt: OnlineMetaOptimizer, batches, x_val, y_val) -> tuple[Tensors, torch.Tensor]:
    """Hypergradient through several differentiable base steps from the current θ."""
    if is_compiled(opt.model):
        raise ValueError(f"initialize(inner_steps > 1) unrolls base steps: {unroll.COMPILED_MODEL}")
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

    # θ_0, buffers and the base optimizer's state come back after every outer step and at
    # the end; on an exception ϕ, the learning rates and the counters come back as well.
    tx = Transaction(opt)
    tx.save_rng(RNGReplay(opt.device))
    tx.save_params()
    tx.save_buffers()
    tx.save_base_state(clone=False)  # reset() only removes entries, never writes into them
    tx.save_meta()
    meta_optimizer = torch.optim.Adam(opt.meta_params, lr=meta_lr)
    train = cycle(train_batches)
    val = cycle(val_batches) if val_batches is not None else None

    def reset() -> None:
        tx.restore_model()
        opt.base_optimizer.state.clear()  # every outer step starts with fresh state

    losses: list[float] = []
    skipped = 0
    with tx:
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
        tx.restore_model()  # θ, buffers and the base optimizer's state as they started
    if skipped:
        warnings.warn(
            f"adaloss: initialize() skipped {skipped} of {steps} outer steps with non-finite "
            "meta-gradients or task losses",
            RuntimeWarning,
            stacklevel=3,
        )
    return losses
