"""One benchmark training step, the same for ``adaloss run`` and ``adaloss speed``.

Without a meta optimizer it is the plain step every baseline takes,
``loss.backward(); optimizer.step(); optimizer.zero_grad()`` on the task loss; with one it
is ``opt.step(x, y, x_val, y_val)``. Either way it reports whether the step was taken:
like the meta optimizer, the plain step checks its loss once (one host sync, after the
backward pass so as not to stall it) and leaves θ unchanged when the loss is not finite.
"""

from __future__ import annotations

import torch
from torch import nn

from adaloss.online import OnlineMetaOptimizer
from adaloss.tasks import Task


def training_step(
    model: nn.Module,
    task: Task,
    base: torch.optim.Optimizer,
    opt: OnlineMetaOptimizer | None,
    batch: tuple[torch.Tensor, ...],
) -> bool:
    """Take one step on ``batch`` = (x, y) or (x, y, x_val, y_val); False if it was rejected."""
    x, y, *val = batch
    if opt is not None:
        return not opt.step(x, y, *val).skipped
    loss = task.loss(model(x), y)
    loss.backward()
    finite = bool(torch.isfinite(loss))
    if finite:
        base.step()
    base.zero_grad(set_to_none=True)
    return finite
