"""The learned loss on a grid, snapshot by snapshot over training (paper Figs. 1, 4, 9–18).

Classification: loss against the predicted probability for target 1 and for
target 0. Regression: loss against the error (prediction − target) around a
fixed target. The grid values are small and plain (lists of floats), so they
go into benchmark result files as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from adaloss.tasks import Regression, Task


@torch.no_grad()
def loss_on_grid(loss: nn.Module, task: Task, points: int = 101, target: float = 0.5) -> dict:
    """ℓ evaluated on a 1-D grid: {"x_label", "x", "curves": {name: values}}."""
    reference = next(iter(loss.parameters()), torch.empty(()))
    kwargs = {"dtype": reference.dtype, "device": reference.device}
    if isinstance(task, Regression):
        errors = torch.linspace(-0.5, 0.5, points, **kwargs)
        targets = torch.full_like(errors, target)
        curves = {"loss": _pointwise(loss, targets + errors, targets)}
        return {"x_label": "Error", "x": errors.tolist(), "curves": curves}
    probs = torch.linspace(0.0, 1.0, points, **kwargs)
    curves = {
        f"y = {label}": _pointwise(loss, probs, torch.full_like(probs, float(label)))
        for label in (1, 0)
    }
    return {"x_label": "Predicted probability", "x": probs.tolist(), "curves": curves}


def _pointwise(loss: nn.Module, pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    if hasattr(loss, "pointwise"):  # adaloss representations: one batched call
        return loss.pointwise(pred[:, None], target[:, None])[:, 0].tolist()
    return [
        float(loss(p.reshape(1, 1), t.reshape(1, 1))) for p, t in zip(pred, target, strict=True)
    ]


class LossTimeline:
    """Collects ``loss_on_grid`` snapshots at chosen steps."""

    def __init__(self, loss: nn.Module, task: Task, points: int = 101) -> None:
        self.loss, self.task, self.points = loss, task, points
        self.steps: list[int] = []
        self.grid: dict | None = None

    def snapshot(self, step: int) -> None:
        grid = loss_on_grid(self.loss, self.task, self.points)
        if self.grid is None:
            self.grid = {"x_label": grid["x_label"], "x": grid["x"], "curves": {}}
        for name, values in grid["curves"].items():
            self.grid["curves"].setdefault(name, []).append(values)
        self.steps.append(step)

    def to_dict(self) -> dict | None:
        return None if self.grid is None else {**self.grid, "steps": list(self.steps)}
