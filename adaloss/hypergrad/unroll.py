"""Reference engine: differentiate through TorchOpt's update (the paper's way).

g = ∇_θ M_ϕ is built with ``create_graph=True``, TorchOpt's functional update
turns it into θ_{t+1}(ϕ), and L_T(θ_{t+1}) is backpropagated to ϕ: a backward
through a backward. Plain and readable; the forward engine is tested against it.
"""

from __future__ import annotations

import torch

from adaloss.hypergrad import Hypergradient, MetaStep, Tensors, meta_gradient, scaled_grad
from adaloss.inner import NewState
from adaloss.keepfit import kept

COMPILED_MODEL = (
    "hypergrad='unroll' differentiates through the model's backward pass (a double "
    "backward), which torch.compile's compiled backward does not support; use "
    "hypergrad='forward' with the compiled model, or pass the uncompiled model"
)


def differentiable_step(
    step: MetaStep, params: Tensors, out: torch.Tensor, previous: NewState | None = None
) -> tuple[torch.Tensor, Tensors, Tensors, NewState]:
    """θ_{i+1}(ϕ) from the model output ``out`` at ``params``: (M_ϕ, g, θ_{i+1}, new state).

    ``previous`` chains the optimizer state of an earlier differentiable step.
    """
    learned = step.learned_loss(out)
    grads = scaled_grad(learned, params, step.grad_scale, create_graph=True)
    # The whole batch's g across ranks, inside the graph: the backward averages as well.
    learned, *grads = step.replicas.mean_differentiable((learned, *grads))
    grads = tuple(grads)
    updates, new_state = step.update.function(params, previous=previous)(grads)
    if step.log_step is not None:  # the learned step length r = e^a, differentiable in a
        factor = step.log_step.exp()
        updates = tuple(factor * u for u in updates)
    new_params = tuple(p + u for p, u in zip(params, updates, strict=True))
    return learned, grads, new_params, new_state


def hypergradient(step: MetaStep, out: torch.Tensor) -> Hypergradient:
    """One-step unrolled hypergradient dL_T(θ_{t+1}(ϕ))/dϕ."""
    params = tuple(step.params)
    learned, grads, new_params, new_state = differentiable_step(step, params, out)
    horizons = step.horizons()  # None: L_T at θ_{t+1} itself
    if horizons is not None:
        updates = tuple(n - p for n, p in zip(new_params, params, strict=True))
    measured = new_params if horizons is None else step.lookahead(params, updates, horizons)
    task_loss = step.validation_loss(measured)
    learned_params = [*step.meta_params, *([] if step.log_step is None else [step.log_step])]
    meta_grads = meta_gradient(task_loss, learned_params, step.grad_scale, bool(step.keep_fit))
    task_loss, *meta_grads = step.replicas.mean((task_loss.detach(), *meta_grads))
    if step.keep_fit:  # the same derivative of L_T on the training batch; the conflict removed
        fit_grads = meta_gradient(step.training_loss(measured), learned_params, step.grad_scale)
        meta_grads = kept(tuple(meta_grads), step.replicas.mean(fit_grads), step.keep_fit)
    return Hypergradient(
        learned_loss=learned.detach(),
        base_grads=tuple(g.detach() for g in grads),
        new_params=tuple(p.detach() for p in new_params),
        new_state=new_state,
        task_loss=task_loss,
        meta_grads=tuple(meta_grads),
    )
