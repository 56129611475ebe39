"""Learned-loss representations M_ϕ(pred, target) from the AdaLFL paper.

Every representation takes ``pred`` and ``target`` already mapped by a
:class:`~adaloss.tasks.Task` (probabilities / one-hot for classification, raw
values for regression), both of shape (B, C), and applies a scalar function
ℓ(pred_i, target_i) to each output channel in one batched call (no Python loop
over channels), so the same ϕ serves any number of outputs (paper Eq. 3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

REDUCTIONS = ("mean", "sum", "none")


class SmoothLeakyReLU(nn.Module):
    """φ(x) = γx + (1−γ)·softplus(x; β) (paper Eq. 4): smooth, unbounded, slope ≥ γ."""

    def __init__(self, beta: float = 10.0, gamma: float = 0.01) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.beta = float(beta)
        self.gamma = float(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's softplus switches to x itself where βx > 20: it never overflows, and
        # there the two branches differ by log1p(e^-20)/β ≈ 2e-9/β, below float32's
        # resolution, so the function stays C¹ in every practical sense.
        return self.gamma * x + (1.0 - self.gamma) * F.softplus(x, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}"


class _ElementwiseLoss(nn.Module):
    """Base class: ``pointwise(pred, target)`` on (B, C) tensors, then Eq. 3's reduction."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() != 2:
            raise ValueError(
                "learned loss expects pred and target of the same shape (B, C); "
                f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
            )
        per_sample = self.pointwise(pred, target.to(pred.dtype)).mean(dim=1)  # (B,)
        if self.reduction == "mean":
            return per_sample.mean()
        if self.reduction == "sum":
            return per_sample.sum()
        return per_sample


def _mlp(hidden: tuple[int, ...], activation: Callable[[], nn.Module]) -> nn.Sequential:
    """R² → R: Linear layers of the given widths, ``activation()`` after each hidden one."""
    layers: list[nn.Module] = []
    width = 2
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class LossNetwork(_ElementwiseLoss):
    """AdaLFL's ℓ_ϕ: R² → R, an MLP with smooth leaky ReLU hidden units and linear output.

    Unconstrained in sign and scale: the paper's point (§2.2) is that a bounded or
    flat representation biases the learned loss towards flat regions.

    ``anchored=True`` (not in the paper) subtracts the value and slope at the target,
    ℓ̃(p, t) = ℓ(p, t) − ℓ(t, t) − (p − t)·∂ₚℓ(t, t), so that every ϕ has a stationary
    point at p = t: a short offline phase can then no longer learn a loss that keeps
    pushing predictions past the target (BENCHMARKS.md, Diabetes).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (40, 40),
        beta: float = 10.0,
        gamma: float = 0.01,
        reduction: str = "mean",
        anchored: bool = False,
    ) -> None:
        super().__init__(reduction)
        self.net = _mlp(hidden, lambda: SmoothLeakyReLU(beta, gamma))
        self.anchored = anchored

    def _raw(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.stack((pred, target), dim=-1)).squeeze(-1)

    def pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = self._raw(pred, target)
        if not self.anchored:
            return values
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():  # the slope at the target is itself a function of ϕ
            at = target.detach().clone().requires_grad_()
            base = self._raw(at, target)
            (slope,) = torch.autograd.grad(base.sum(), at, create_graph=differentiable)
        if not differentiable:
            base = base.detach()
        return values - base - (pred - target) * slope

    def extra_repr(self) -> str:
        return "anchored=True" if self.anchored else ""


class ML3Network(_ElementwiseLoss):
    """The ML3 (Bechtle et al., 2021) loss network: ReLU hidden layers, Softplus output (≥ 0)."""

    def __init__(self, hidden: tuple[int, ...] = (40, 40), reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.net = nn.Sequential(*_mlp(hidden, nn.ReLU), nn.Softplus())

    def pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.stack((pred, target), dim=-1)).squeeze(-1)


def _taylor_exponents(degree: int) -> list[tuple[int, int]]:
    """Monomials (p−c_p)^i (t−c_t)^j with 1 ≤ i and i + j ≤ degree.

    Terms with i = 0 do not depend on the prediction, so they have no effect on
    training and are left out (as in TaylorGLO): degree 2 has 3 terms, degree 3 has 6.
    """
    return [
        (i, j) for total in range(1, degree + 1) for i in range(1, total + 1) for j in [total - i]
    ]


class TaylorLoss(_ElementwiseLoss):
    """Bivariate Taylor polynomial in (pred, target) with a learnable expansion centre.

    degree=2 is the quadratic TP and degree=3 the cubic TP of the paper's Table 4
    (Gonzalez & Miikkulainen 2021; Gao et al. 2021). Initialized at the squared
    error (p − t)² expanded around the centre (0, 0), so an untrained TaylorLoss
    already trains a model sensibly.
    """

    def __init__(self, degree: int = 2, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if degree not in (2, 3):
            raise ValueError(f"TaylorLoss supports degree 2 or 3, got {degree}")
        self.degree = degree
        self.exponents = _taylor_exponents(degree)
        coeffs = torch.zeros(len(self.exponents))
        coeffs[self.exponents.index((2, 0))] = 1.0  # p²
        coeffs[self.exponents.index((1, 1))] = -2.0  # −2pt (t² is prediction-independent)
        self.center = nn.Parameter(torch.zeros(2))
        self.coefficients = nn.Parameter(coeffs)
        self.register_buffer("_i", torch.tensor([e[0] for e in self.exponents]), persistent=False)
        self.register_buffer("_j", torch.tensor([e[1] for e in self.exponents]), persistent=False)

    def pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dp = (pred - self.center[0]).unsqueeze(-1)
        dt = (target - self.center[1]).unsqueeze(-1)
        monomials = dp.pow(self._i) * dt.pow(self._j)  # (B, C, terms)
        return monomials @ self.coefficients.to(pred.dtype)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
