"""``keep_fit``: a meta step may not buy validation error with the training batch's fit.

With a few dozen validation examples the loss network can fit the meta-objective's
examples at the cost of the training data: on Diabetes the learned loss's model ends with
a higher training error, a lower validation error and a higher held-out error than plain
training (BENCHMARKS.md, "The confirmation complete"). Each meta step sees this conflict
as two hypergradients pointing apart: d L_val(θ_{t+1})/dϕ and d L_train(θ_{t+1})/dϕ, the
task loss at the same θ_{t+1} on the step's own training batch. ``keep_fit`` projects
the first onto the half-space where it does not raise the second to first order (PCGrad,
Yu et al., 2020): unchanged where the two agree, stripped of the conflicting component
where they do not. ``keep_fit="agree"`` drops a conflicting meta-gradient whole instead:
under Adam a projected residual is still stepped at nearly the full η, since Adam divides
each coordinate by its own running scale (BENCHMARKS.md, "A meta step that may not cost
the training batch its fit"). The engines compute both gradients; either rule runs on the
device, no host read.
"""

from __future__ import annotations

import torch

Tensors = tuple[torch.Tensor, ...]
KEEP_FIT = (False, True, "agree")


def check_keep_fit(value: object, recipe: bool = False) -> None:
    """``keep_fit`` is False, True (project) or "agree" (drop); an argument may also be None
    (the recipe's), a recipe's own value may not."""
    if not ((value is None and not recipe) or isinstance(value, bool) or value == "agree"):
        raise ValueError(f"keep_fit must be one of {KEEP_FIT}; got {value!r}")


def kept(meta: Tensors, fit: Tensors, rule: bool | str) -> Tensors:
    """The meta-gradient ``keep_fit=rule`` steps ϕ with: projected (True) or dropped
    ("agree") where it conflicts with ``fit``."""
    return drop_conflict(meta, fit) if rule == "agree" else project_conflict(meta, fit)


def _inner(meta: Tensors, fit: Tensors) -> torch.Tensor:
    return sum((m * f).sum() for m, f in zip(meta, fit, strict=True))


def project_conflict(meta: Tensors, fit: Tensors) -> Tensors:
    """``meta`` minus its component along ``fit`` when ⟨meta, fit⟩ < 0; else ``meta``.

    Both are gradients of losses to be lowered (dL_val/dϕ and dL_train/dϕ), so a negative
    inner product means a step along −meta raises the training loss.
    """
    if not meta:
        return meta
    dot, norm = _inner(meta, fit), _inner(fit, fit)
    tiny = torch.finfo(norm.dtype).tiny
    coefficient = torch.clamp(dot, max=0.0) / torch.clamp(norm, min=tiny)
    return tuple(m - coefficient * f for m, f in zip(meta, fit, strict=True))


def drop_conflict(meta: Tensors, fit: Tensors) -> Tensors:
    """``meta`` where ⟨meta, fit⟩ ≥ 0, zeros where the two conflict (an Adam meta-optimizer
    still moves ϕ on such a step, by its decaying momentum)."""
    if not meta:
        return meta
    agree = (_inner(meta, fit) >= 0).to(meta[0].dtype)
    return tuple(m * agree for m in meta)
