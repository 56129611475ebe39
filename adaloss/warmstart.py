"""Task-loss warm start: fit ϕ so that the learned loss first moves the model as the task loss does.

The paper's offline phase (Algorithm 1) only ever sees θ_0's errors and, as measured
in BENCHMARKS.md, learns losses whose minimum sits far from the target (regression
diverges) or whose slope is ~1000× cross-entropy's (the softmax saturates). The warm
start instead fits the slope ∂ℓ_ϕ/∂pred on a grid of (prediction, target) pairs to the
task loss's gradient with respect to the raw outputs (``Task.gradient_match``), so
training starts exactly where the baseline starts and online adaptation moves it from
there. It depends on the loss representation and the task only, never on the model,
and takes a full-batch L-BFGS fit of well under a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from adaloss.tasks import Regression, Task

DEFAULT_RANGE = (-0.5, 1.5)  # regression, when no targets are seen: targets scaled to [0, 1]


def target_span(targets: Iterable[torch.Tensor]) -> tuple[float, float]:
    """(smallest, largest) target; (inf, -inf) for no targets."""
    targets = [t for t in targets if t.numel()]
    lo = min((float(t.min()) for t in targets), default=float("inf"))
    hi = max((float(t.max()) for t in targets), default=float("-inf"))
    return lo, hi


def widen(lo: float, hi: float, margin: float = 0.5) -> tuple[float, float]:
    """``[lo, hi]`` widened by ``margin`` of its width on each side (predictions stray)."""
    span = max(hi - lo, 1e-6)
    return lo - margin * span, hi + margin * span


def target_range(targets: Iterable[torch.Tensor], margin: float = 0.5) -> tuple[float, float]:
    """The targets' span, widened by ``margin`` of it on each side."""
    return widen(*target_span(targets), margin)


def _slopes(loss: nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∂ℓ/∂pred at every pair, differentiable in ϕ."""
    if not hasattr(loss, "pointwise"):
        raise TypeError(
            f"the warm start needs an elementwise learned loss with a pointwise(pred, target) "
            f"method (LossNetwork, ML3Network, TaylorLoss); got {type(loss).__name__}"
        )
    p = pred.detach().requires_grad_()
    values = loss.pointwise(p[:, None], target[:, None])
    (slope,) = torch.autograd.grad(values.sum(), p, create_graph=True)
    return slope[:, 0] if slope.dim() == 2 else slope


def gradient_mismatch(
    loss: nn.Module, task: Task, value_range: tuple[float, float] = DEFAULT_RANGE, points: int = 0
) -> torch.Tensor:
    """‖weight·ℓ' − goal‖ / ‖goal‖ over the task's warm-start grid: 0 is a perfect fit."""
    pred, target, weight, goal = _grid(loss, task, value_range, points)
    with torch.enable_grad():
        residual = weight * _slopes(loss, pred, target) - goal
    return (residual.norm() / goal.norm()).detach()


def _grid(loss, task, value_range, points):
    reference = next(iter(loss.parameters()))
    points = points or (16 if isinstance(task, Regression) else 128)  # 256 pairs
    pred, target = task.warm_start_pairs(points, value_range)
    pred = pred.to(device=reference.device, dtype=reference.dtype)
    target = target.to(device=reference.device, dtype=reference.dtype)
    weight, goal = task.gradient_match(pred, target)
    return pred, target, weight, goal


def warm_start(
    loss: nn.Module,
    task: Task,
    value_range: tuple[float, float] = DEFAULT_RANGE,
    iterations: int = 150,
    points: int = 0,
) -> float:
    """Fit ``loss``'s parameters in place so that its slope reproduces the task loss's.

    Minimizes mean((weight·ℓ' − goal)²) / mean(goal²) over the grid with L-BFGS and
    returns the final relative mismatch (``gradient_mismatch``). ``value_range`` bounds
    regression predictions and targets, and sets the loss's input normalization
    (``normalize_inputs``) before the fit; classification grids cover (0, 1) × {0, 1}.
    """
    params = [p for p in loss.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the learned loss has no trainable parameters to warm-start")
    if isinstance(task, Regression) and hasattr(loss, "normalize_inputs"):
        loss.normalize_inputs(value_range)  # the network sees the range at its own scale
    pred, target, weight, goal = _grid(loss, task, value_range, points)
    scale = goal.pow(2).mean()
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=iterations,
        history_size=50,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        objective = (weight * _slopes(loss, pred, target) - goal).pow(2).mean() / scale
        objective.backward()
        return objective

    with torch.enable_grad():
        optimizer.step(closure)
    for p in params:
        p.grad = None
    return float(gradient_mismatch(loss, task, value_range, points))
