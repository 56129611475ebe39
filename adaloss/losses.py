"""Learned-loss representations M_ϕ(pred, target) from the AdaLFL paper.

Every representation takes ``pred`` and ``target`` already mapped by a
:class:`~adaloss.tasks.Task` (probabilities / one-hot for classification, raw
values for regression), both of shape (B, C), and applies a scalar function
ℓ(pred_i, target_i) to each output channel in one batched call (no Python loop
over channels), so the same ϕ serves any number of outputs (paper Eq. 3).
"""

from __future__ import annotations

import math
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
    """Base class: ``pointwise(pred, target)`` on (B, C) tensors, then Eq. 3's reduction.

    Subclasses define ``_pointwise`` on the network's own scale. ``pointwise`` is the loss
    on the task's scale: ``s²·_pointwise((p − c)/s, (t − c)/s)``, with (c, s) set from the
    targets' range by the warm start (``normalize_inputs``), because a small network fitted
    around [0, 1] cannot fit squared error over targets in the hundreds (relative mismatch
    0.45 on a ±1,000 range). s² keeps the slope the task's: ∂/∂p = s·_pointwise'.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.input_center, self.input_scale = 0.0, 1.0  # (c, s): identity until normalized

    def normalize_inputs(self, value_range: tuple[float, float]) -> None:
        """Map ``value_range`` (predictions and targets the task can produce) to about
        [−0.5, 1.5]. s is a power of two and c a multiple of it, so the map is exact in
        floating point and is the identity (the same function, bit for bit) on targets
        already on that scale, such as the benchmark rows' [0, 1]."""
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range must be finite with lo < hi, got {value_range}")
        scale = 2.0 ** round(math.log2((hi - lo) / 2))
        self.input_center, self.input_scale = scale * math.trunc((lo + hi) / 2 / scale), scale

    def pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """ℓ(pred, target) on the task's scale, channel by channel."""
        c, s = self.input_center, self.input_scale
        if c == 0.0 and s == 1.0:
            return self._pointwise(pred, target)
        return (s * s) * self._pointwise((pred - c) / s, (target - c) / s)

    def _pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_extra_state(self) -> dict:
        return {"input_center": self.input_center, "input_scale": self.input_scale}

    @staticmethod
    def check_extra_state(state) -> None:
        """Raise ValueError unless ``state`` is a finite (c, s > 0) as ``get_extra_state`` makes."""
        keys = ("input_center", "input_scale")
        if not isinstance(state, dict) or not all(isinstance(state.get(k), float) for k in keys):
            raise ValueError(f"the loss's input normalization must be floats {keys}; got {state!r}")
        if not (math.isfinite(state["input_center"]) and 0 < state["input_scale"] < math.inf):
            raise ValueError(f"the loss's input normalization must be finite, s > 0; got {state}")

    def set_extra_state(self, state: dict) -> None:
        self.check_extra_state(state)
        self.input_center, self.input_scale = state["input_center"], state["input_scale"]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, *args):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, *args)
        key = prefix + "_extra_state"
        if key in missing:  # saved before the normalization existed: the identity
            missing.remove(key)
            self.input_center, self.input_scale = 0.0, 1.0

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

    def _pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
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


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x with softplus(x) = y > 0, without overflowing exp(y) for large y."""
    return y + torch.log(-torch.expm1(-y))


def _softplus_rise(u: torch.Tensor, gamma: torch.Tensor, switch: float = 20.0) -> torch.Tensor:
    """softplus(u + γ) − softplus(γ) for u ≥ 0, as log1p(σ(γ)·expm1(u)) where that cannot
    overflow: exactly 0 at u = 0 and never below it, so the loss is exactly 0 at the target and
    never negative (the plain difference rounds to ±1e-14 there, differently on each CPU)."""
    near = torch.log1p(torch.sigmoid(gamma) * torch.expm1(u.clamp(max=switch)))
    far = F.softplus(u + gamma) - F.softplus(gamma)
    return torch.where(u > switch, far, near)


class MonotoneLossNetwork(_ElementwiseLoss):
    """ℓ_ϕ(p, t) = G_ϕ(e², t, sign e) with e = p − t, G increasing in e² and G(0) = 0.

    Not in the paper. An unconstrained ℓ_ϕ can learn a tilt: a slope of one sign over the
    whole range, which pushes every prediction the same way (BENCHMARKS.md: the default's
    minimum drifted 0.19 from the target on Diabetes, fitting a 32-example validation
    split). Here ∂ℓ/∂p = 2e·∂G/∂(e²) has the sign of e for every ϕ: each prediction is
    pulled toward its own target, and only how hard — per error size, side and target — is
    learned. G(v) = a·v + Σ_j c_j·softplus-ramp_j(v) + Σ_j d_j·tanh-ramp_j(v), every ramp
    increasing from 0 with slope ≤ 1, and a, c, d ≥ 0 given by a network of (t, sign e):
    G can grow faster than e² (a steeper loss), slower (robust), or differently on each
    side. The squared error is a = 1, c = d = 0 (what the warm start fits, to within the
    softplus floor of c and d).
    """

    def __init__(
        self, hidden: tuple[int, ...] = (40, 40), ramps: int = 8, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        if ramps < 1:
            raise ValueError(f"ramps must be >= 1, got {ramps}")
        self.ramps = ramps
        layers: list[nn.Module] = []
        width = 2
        for h in hidden:
            layers += [nn.Linear(width, h), SmoothLeakyReLU()]
            width = h
        layers.append(nn.Linear(width, 1 + 2 * ramps))
        self.coefficients = nn.Sequential(*layers)
        with torch.no_grad():  # ϕ_0 ≈ the squared error: a ≈ 1, c, d ≈ 0.002, nearly flat in t
            layers[-1].weight.mul_(0.01)
            layers[-1].bias.fill_(-6.0)
            layers[-1].bias[0] = float(_inverse_softplus(torch.tensor(1.0)))
        # Knees spread over squared errors 0…1 (targets and probabilities live in [0, 1]).
        self.ramp_slopes = nn.Parameter(_inverse_softplus(torch.full((ramps,), 10.0)))
        self.ramp_offsets = nn.Parameter(torch.linspace(-8.0, 2.0, ramps))
        self.tanh_slopes = nn.Parameter(_inverse_softplus(torch.logspace(0, 2, ramps)))

    def _pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        e = pred - target
        v = (e * e).unsqueeze(-1)  # (B, C, 1)
        side = torch.where(e > 0, 1.0, -1.0).to(pred.dtype)
        weights = F.softplus(self.coefficients(torch.stack((target, side), dim=-1)))
        a, c, d = weights.split([1, self.ramps, self.ramps], dim=-1)
        beta = F.softplus(self.ramp_slopes).to(pred.dtype)
        gamma = self.ramp_offsets.to(pred.dtype)
        ramps = _softplus_rise(beta * v, gamma) / beta
        kappa = F.softplus(self.tanh_slopes).to(pred.dtype)
        bends = torch.tanh(kappa * v) / kappa
        return (a * v).squeeze(-1) + (c * ramps).sum(-1) + (d * bends).sum(-1)

    def extra_repr(self) -> str:
        return f"ramps={self.ramps}"


class ML3Network(_ElementwiseLoss):
    """The ML3 (Bechtle et al., 2021) loss network: ReLU hidden layers, Softplus output (≥ 0)."""

    def __init__(self, hidden: tuple[int, ...] = (40, 40), reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.net = nn.Sequential(*_mlp(hidden, nn.ReLU), nn.Softplus())

    def _pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
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

    def _pointwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dp = (pred - self.center[0]).unsqueeze(-1)
        dt = (target - self.center[1]).unsqueeze(-1)
        monomials = dp.pow(self._i) * dt.pow(self._j)  # (B, C, terms)
        return monomials @ self.coefficients.to(pred.dtype)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
