"""``keep_fit``: a meta step may not buy validation error with the training batch's fit.

With a few dozen validation examples the loss network can fit the meta-objective's
examples at the cost of the training data: on Diabetes the learned loss's model ends with
a higher training error, a lower validation error and a higher held-out error than plain
training (BENCHMARKS.md, "The confirmation complete"). Each meta step sees this conflict
as two hypergradients pointing apart: d L_val(θ_{t+1})/dϕ and d L_train(θ_{t+1})/dϕ, the
task loss at the same θ_{t+1} on the step's own training batch. ``keep_fit`` projects
the first onto the half-space where it does not raise the second to first order (PCGrad,
Yu et al., 2020): unchanged where the two agree, stripped of the conflicting component
where they do not. The engines compute both; the projection runs on the device, no host
read.
"""

from __future__ import annotations

import torch

Tensors = tuple[torch.Tensor, ...]


def project_conflict(meta: Tensors, fit: Tensors) -> Tensors:
    """``meta`` minus its component along ``fit`` when ⟨meta, fit⟩ < 0; else ``meta``.

    Both are gradients of losses to be lowered (dL_val/dϕ and dL_train/dϕ), so a negative
    inner product means a step along −meta raises the training loss.
    """
    if not meta:
        return meta
    dot = sum((m * f).sum() for m, f in zip(meta, fit, strict=True))
    norm = sum((f * f).sum() for f in fit)
    tiny = torch.finfo(norm.dtype).tiny
    coefficient = torch.clamp(dot, max=0.0) / torch.clamp(norm, min=tiny)
    return tuple(m - coefficient * f for m, f in zip(meta, fit, strict=True))
