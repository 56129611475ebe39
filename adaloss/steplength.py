"""A learned step length beside the learned loss: Meta-LR's one scalar, in log space.

On the paper's rows the default's gains were what a longer base step gives, and the guard's
trust region bounds how much longer the learned loss may make it (BENCHMARKS.md, "What the
default's difference from the baseline is made of"). With ``learn_lr`` the step's length is
learned apart from the loss's shape: every update of the base optimizer is multiplied by
r = exp(a), a meta-learned by the same meta-optimizer as ϕ (so η moves r by about a factor
e^η a step). Every supported update is linear in its learning rate, so r·U is the update at
r× every group's lr, and dL_T/da = ⟨∇L_T(θ_t + H·r·U), H·r·U⟩: no second-order term.

``"longer"`` keeps r ≥ 1 (a projected onto a ≥ 0 after every meta step): the one-step
objective shrinks r where a longer step helps over a longer horizon (short-horizon bias), and
where r shrank the learned loss did harm (BENCHMARKS.md, "learn_lr"); lengthening only, the
user's lr is the shortest step taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

LEARN_LR = (False, True, "longer")


def check_learn_lr(value: object) -> None:
    """``learn_lr`` is None, False, True or "longer" (r ≥ 1); 1 and 0 are not booleans."""
    if not (value is None or isinstance(value, bool) or value == "longer"):
        raise ValueError(f"learn_lr must be one of {LEARN_LR} (or None); got {value!r}")


def check_step_length_meta_lr(rate: object, learn_lr: object) -> None:
    """``step_length_meta_lr`` is None or a finite number > 0, and only with ``learn_lr``."""
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < float("inf"):
        raise ValueError(f"step_length_meta_lr must be None or a finite number > 0, got {rate!r}")
    if not learn_lr:
        raise ValueError("step_length_meta_lr is the learned step length's rate: it needs learn_lr")


class LearnedStepLength:
    """r = exp(a) multiplying the base optimizer's updates; a starts at 0 (r = 1)."""

    def __init__(self, reference: torch.Tensor, longer_only: bool = False) -> None:
        self.log_factor = nn.Parameter(
            torch.zeros((), dtype=reference.dtype, device=reference.device)
        )
        self.longer_only = longer_only

    def meta_optimizer(self, phi: list, meta_lr: float, rate: float | None):
        """Adam over ϕ at ``meta_lr`` and a at ``rate``; None (the caller's one Adam over
        both at ``meta_lr``) when no rate of its own is asked for."""
        if rate is None:
            return None
        groups = [{"params": phi}] if phi else []
        return torch.optim.Adam([*groups, {"params": [self.log_factor], "lr": rate}], lr=meta_lr)

    @torch.no_grad()
    def project(self) -> None:
        """After a meta step: with ``longer_only``, a back to 0 if it went below (r ≥ 1)."""
        if self.longer_only:
            self.log_factor.clamp_(min=0.0)

    @property
    def factor(self) -> float:
        """r, read on the host."""
        return float(self.log_factor.detach().exp())

    @contextmanager
    def scaled_lrs(self, optimizer: torch.optim.Optimizer) -> Iterator[None]:
        """Every group's lr at r× for the optimizer's own ``step()`` (steps without a meta
        step), restored afterwards whatever happens (a scheduler keeps owning lr)."""
        factor = self.factor
        saved = [group["lr"] for group in optimizer.param_groups]
        try:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * factor
            yield
        finally:
            for group, lr in zip(optimizer.param_groups, saved, strict=True):
                group["lr"] = lr


def step_length_gradient(v: tuple[torch.Tensor, ...], new_params, params) -> torch.Tensor:
    """dL_T/da = Σ ⟨v, θ' − θ_t⟩ with v = H·∇L_T at the measured point, θ' − θ_t = r·U."""
    return sum(((vi * (n - p)).sum() for vi, n, p in zip(v, new_params, params, strict=True)))
