"""Tasks: how model outputs and targets enter the learned loss, and the task loss L_T.

A task knows three things about its kind of problem: how to check a batch (clear
``ValueError`` before anything changes), how to map raw outputs and targets to
the (B, C) pair the learned loss sees (paper §2.2: softmax probabilities and
one-hot targets for classification, raw values for regression), and which
handcrafted loss is the meta-objective and the baseline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch.nn import functional as F


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ValueError if a floating tensor holds NaN or Inf."""
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} must be finite; found {bad} NaN/Inf values in {_shape(tensor)}")


class Task(ABC):
    """A kind of supervised problem: its batch checks, learned-loss mapping and task loss."""

    num_outputs: int

    def check_targets(self, targets: torch.Tensor, batch_size: int) -> None:
        """Raise ValueError unless ``targets`` fit this task for ``batch_size`` inputs."""
        self.check_target_structure(targets, batch_size)
        if not bool(self.valid_target_values(targets)):
            check_finite("targets", targets)
            raise ValueError(self._invalid_target_values(targets))

    def check_target_structure(self, targets: torch.Tensor, batch_size: int) -> None:
        """``check_targets`` without looking at the values: shape and dtype only, no device sync."""
        if not isinstance(targets, torch.Tensor):
            raise ValueError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
        if targets.dim() == 0 or targets.shape[0] != batch_size:
            raise ValueError(
                f"targets must have batch size {batch_size} (the inputs'); "
                f"got targets of shape {_shape(targets)}"
            )
        self._check_targets(targets)

    def valid_target_values(self, targets: torch.Tensor) -> torch.Tensor:
        """A 0-dim bool tensor on the targets' device: whether all values are valid targets
        (structure checked already). Reading it is the check's one device sync."""
        if targets.is_floating_point():
            return torch.isfinite(targets).all()
        return torch.ones((), dtype=torch.bool, device=targets.device)

    def _invalid_target_values(self, targets: torch.Tensor) -> str:
        """The error message once ``valid_target_values`` said no (and targets are finite)."""
        return "targets hold invalid values"

    def check_outputs(self, outputs: torch.Tensor, batch_size: int) -> None:
        """Raise ValueError unless the model's ``outputs`` are (batch_size, num_outputs)."""
        if outputs.dim() == 1 and self.num_outputs == 1:
            outputs = outputs.unsqueeze(1)
        expected = (batch_size, self.num_outputs)
        if _shape(outputs) != expected:
            raise ValueError(
                f"{type(self).__name__} expects model outputs of shape {expected}; "
                f"got {_shape(outputs)}"
            )
        if not outputs.is_floating_point():
            raise ValueError(f"model outputs must be floating point, got {outputs.dtype}")

    @abstractmethod
    def _check_targets(self, targets: torch.Tensor) -> None:
        """The task's own shape and dtype checks (values: ``valid_target_values``)."""

    @abstractmethod
    def learned_loss_inputs(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map raw outputs and targets to the (B, C) ``(pred, target)`` pair of M_ϕ."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The handcrafted task loss L_T (the meta-objective and the baseline's loss)."""

    @abstractmethod
    def error(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The reported test error: MSE for regression, error rate for classification."""

    def gradient_match(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(weight, goal)`` such that a learned loss with slope ℓ' = ∂ℓ/∂pred
        moves the raw outputs as the task loss does exactly when ``weight·ℓ' = goal``.

        ``pred, target`` are mapped pairs (what ℓ sees). This is what the warm start
        fits (``adaloss.warmstart``): the task loss's gradient with respect to the raw
        outputs, written channel by channel.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no warm start")

    def warm_start_pairs(
        self, points: int, value_range: tuple[float, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A grid of mapped ``(pred, target)`` pairs (1-D, float64) covering what the task
        can produce; ``value_range`` bounds raw predictions and targets (regression only)."""
        raise NotImplementedError(f"{type(self).__name__} defines no warm start")


def _probability_pairs(points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities in (0, 1) against targets 0 and 1: every pair a softmax or sigmoid makes."""
    probs = (torch.arange(points, dtype=torch.float64) + 0.5) / points
    return probs.repeat(2), torch.cat([torch.zeros(points), torch.ones(points)]).double()


class Classification(Task):
    """C-way classification: logits (B, C), integer labels (B,) in [0, C)."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_outputs = self.num_classes = int(num_classes)

    def _check_targets(self, targets: torch.Tensor) -> None:
        if targets.dim() != 1:
            raise ValueError(f"class labels must have shape (B,); got {_shape(targets)}")
        if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
            raise ValueError(
                f"class labels must be an integer tensor (torch.long); got {targets.dtype}"
            )

    def valid_target_values(self, targets: torch.Tensor) -> torch.Tensor:
        return ((targets >= 0) & (targets < self.num_classes)).all()

    def _invalid_target_values(self, targets: torch.Tensor) -> str:
        return (
            f"class labels must lie in [0, {self.num_classes - 1}]; "
            f"got values in [{int(targets.min())}, {int(targets.max())}]"
        )

    def learned_loss_inputs(self, outputs, targets):
        probs = outputs.softmax(dim=1)
        return probs, F.one_hot(targets.long(), self.num_classes).to(probs.dtype)

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs, targets.long())

    def error(self, outputs, targets):
        return (outputs.argmax(dim=1) != targets).to(outputs.dtype).mean()

    def gradient_match(self, pred, target):
        # ∂M/∂z_j = (p_j/C)·(ℓ'_j − Σ_i p_i ℓ'_i) through the softmax; cross-entropy's is
        # p_j − y_j. The softmax cannot see ℓ' shifted by a per-example constant, so the
        # coupling term is pinned at zero: (p/C)·ℓ' = p − y channel by channel.
        return pred / self.num_classes, pred - target

    def warm_start_pairs(self, points, value_range):
        return _probability_pairs(points)

    def __repr__(self) -> str:
        return f"Classification({self.num_classes})"


class BinaryClassification(Task):
    """Binary classification: one logit per example ((B,) or (B, 1)), labels in {0, 1}."""

    num_outputs = 1

    def _check_targets(self, targets: torch.Tensor) -> None:
        if targets.dim() == 2 and targets.shape[1] == 1:
            targets = targets[:, 0]
        if targets.dim() != 1:
            raise ValueError(f"binary labels must have shape (B,) or (B, 1); got {_shape(targets)}")
        if targets.is_complex():
            raise ValueError(f"binary labels must be real; got {targets.dtype}")

    def valid_target_values(self, targets: torch.Tensor) -> torch.Tensor:
        return ((targets == 0) | (targets == 1)).all()

    def _invalid_target_values(self, targets: torch.Tensor) -> str:
        return "binary labels must be 0 or 1; got other values"

    @staticmethod
    def _columns(outputs, targets):
        return outputs.reshape(-1, 1), targets.reshape(-1, 1).to(outputs.dtype)

    def learned_loss_inputs(self, outputs, targets):
        logits, labels = self._columns(outputs, targets)
        return logits.sigmoid(), labels

    def loss(self, outputs, targets):
        return F.binary_cross_entropy_with_logits(*self._columns(outputs, targets))

    def error(self, outputs, targets):
        logits, labels = self._columns(outputs, targets)
        return ((logits > 0).to(labels.dtype) != labels).to(outputs.dtype).mean()

    def gradient_match(self, pred, target):
        # ∂M/∂z = ℓ'·σ(z)(1 − σ(z)); binary cross-entropy's is σ(z) − y.
        return pred * (1 - pred), pred - target

    def warm_start_pairs(self, points, value_range):
        return _probability_pairs(points)

    def __repr__(self) -> str:
        return "BinaryClassification()"


class Regression(Task):
    """Regression with ``num_outputs`` real targets; (B,) and (B, 1) both mean one output."""

    def __init__(self, num_outputs: int = 1) -> None:
        if num_outputs < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        self.num_outputs = int(num_outputs)

    def _check_targets(self, targets: torch.Tensor) -> None:
        if not targets.is_floating_point():
            raise ValueError(f"regression targets must be floating point; got {targets.dtype}")
        columns = 1 if targets.dim() == 1 else targets.shape[1] if targets.dim() == 2 else -1
        if columns != self.num_outputs or (targets.dim() == 1 and self.num_outputs != 1):
            raise ValueError(
                f"regression targets must have shape (B, {self.num_outputs})"
                + (" or (B,)" if self.num_outputs == 1 else "")
                + f"; got {_shape(targets)}"
            )

    def _columns(self, outputs, targets):
        return outputs.reshape(-1, self.num_outputs), targets.reshape(-1, self.num_outputs).to(
            outputs.dtype
        )

    def learned_loss_inputs(self, outputs, targets):
        return self._columns(outputs, targets)

    def loss(self, outputs, targets):
        return F.mse_loss(*self._columns(outputs, targets))

    def error(self, outputs, targets):
        return self.loss(outputs, targets)

    def gradient_match(self, pred, target):
        # Both M and the MSE average over batch and outputs: ℓ' = 2(p − t).
        return torch.ones_like(pred), 2 * (pred - target)

    def warm_start_pairs(self, points, value_range):
        lo, hi = value_range
        axis = torch.linspace(lo, hi, points, dtype=torch.float64)
        pred, target = torch.meshgrid(axis, axis, indexing="ij")
        return pred.reshape(-1), target.reshape(-1)

    def __repr__(self) -> str:
        return f"Regression({self.num_outputs})"
