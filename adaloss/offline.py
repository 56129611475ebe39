"""Offline initialization of the meta-parameters (ML3; paper Algorithms 1 and 3).

Every outer iteration starts again from θ_0 with fresh optimizer state, takes
``inner_steps`` differentiable base steps and moves ϕ to lower the task loss
that follows. One inner step uses the optimizer's own hypergradient engine;
more are unrolled through TorchOpt's update.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from adaloss.batches import all_finite, cycle
from adaloss.hypergrad import Hypergradient, MetaStep, Tensors, meta_gradient, unroll
from adaloss.modelcalls import RNGReplay, call, is_compiled
from adaloss.tasks import Task
from adaloss.transaction import Transaction


@dataclass(frozen=True)
class Learner:
    """What the offline phase needs from an online meta-optimizer, handed over by it.

    The optimizer builds one in ``initialize()`` and passes it in, so this module never
    imports the optimizer nor reaches into its private methods: the callables are the
    optimizer's own batch check, ``MetaStep`` factory, one-step hypergradient and
    post-meta-step hook.
    """

    model: nn.Module
    params: list[nn.Parameter]  # θ: what the base optimizer updates
    base_state: dict[Any, Any]  # the base optimizer's state, cleared at every reset
    meta_params: list[nn.Parameter]  # ϕ
    task: Task
    device: torch.device
    check_batch: Callable[..., Any]  # (x, y, x_val, y_val): raises ValueError on bad input
    meta_step: Callable[..., MetaStep]  # (x, y, x_val, y_val, rng) -> MetaStep at the current θ
    # (x, y, x_val, y_val) -> (hypergradient, BatchNorm snapshot): training forward + engine
    hypergradient: Callable[..., tuple[Hypergradient, list]]
    after_meta_step: Callable[[], None]  # runs after ϕ changed
    transaction: Callable[[], Transaction]  # saves/restores what the phase may change


def _unrolled(learner: Learner, batches, x_val, y_val) -> tuple[Tensors, torch.Tensor]:
    """Hypergradient through several differentiable base steps from the current θ."""
    if is_compiled(learner.model):
        raise ValueError(f"initialize(inner_steps > 1) unrolls base steps: {unroll.COMPILED_MODEL}")
    x, y = batches[0]
    step = learner.meta_step(x, y, x_val, y_val, RNGReplay(learner.device))
    params, previous = tuple(step.params), None
    for x, y in batches:
        step.y = y
        out = call(step.model, step.names, params, x)
        learner.task.check_outputs(out, x.shape[0])
        _, _, params, previous = unroll.differentiable_step(step, params, out, previous)
    task_loss = step.validation_loss(params)
    task_loss, *meta_grads = step.replicas.mean(
        (task_loss.detach(), *meta_gradient(task_loss, step.meta_params, step.grad_scale))
    )
    return tuple(meta_grads), task_loss


def run_initialization(
    learner: Learner,
    train_batches: Iterable,
    val_batches: Iterable | None,
    steps: int,
    meta_lr: float,
    inner_steps: int,
    progress: bool,
) -> list[float]:
    """Algorithm 1: ``steps`` outer iterations from θ_0; θ and BatchNorm end as they began."""
    if not learner.meta_params:
        raise ValueError("initialize() needs meta-parameters to learn; this one has none")
    if steps < 0 or inner_steps < 1:
        raise ValueError(f"need steps >= 0 and inner_steps >= 1; got {steps}, {inner_steps}")
    # θ_0, buffers and the base optimizer's state come back after every outer step and at
    # the end (torch's Adagrad creates its state when constructed: its own step() needs
    # it back); on an exception ϕ, the learning rates and the counters come back as well.
    tx = learner.transaction()
    tx.save_rng(RNGReplay(learner.device))
    tx.save_params()
    tx.save_buffers()
    tx.save_base_state(clone=False)  # reset() only removes entries, never writes into them
    tx.save_meta()
    meta_optimizer = torch.optim.Adam(learner.meta_params, lr=meta_lr)
    train = cycle(train_batches)
    val = cycle(val_batches) if val_batches is not None else None

    def reset() -> None:
        tx.restore_model()
        learner.base_state.clear()  # every outer step starts with fresh state

    losses: list[float] = []
    skipped = 0
    with tx:
        for _ in tqdm(range(steps), disable=not progress, desc="initialize", leave=False):
            reset()
            batches = [next(train) for _ in range(inner_steps)]
            x_val, y_val = next(val) if val is not None else batches[-1]
            for x, y in batches:
                learner.check_batch(x, y, x_val, y_val)
            if inner_steps == 1:
                ((x, y),) = batches
                hg, _ = learner.hypergradient(x, y, x_val, y_val)
                meta_grads, task_loss = hg.meta_grads, hg.task_loss
            else:
                meta_grads, task_loss = _unrolled(learner, batches, x_val, y_val)
            if not all_finite([task_loss, *meta_grads]):
                skipped += 1
                continue
            for phi, g in zip(learner.meta_params, meta_grads, strict=True):
                phi.grad = g
            meta_optimizer.step()
            meta_optimizer.zero_grad(set_to_none=True)
            learner.after_meta_step()
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
