"""A longer horizon for the learned step length: dθ/da carried along the run (forward mode).

The one-step objective sees only what this step's length does to L_T at θ_{t+1}, and on the
paper's rows it shrinks r where a longer step lowers the loss 1,000 steps ahead (short-horizon
bias; BENCHMARKS.md, "Is the default's longer step short-horizon bias?"). With
``lr_horizon=K`` the step length's hypergradient is ⟨∇L_T(θ_{t+1}), Z_{t+1}⟩, where Z = dθ/da
is carried from step to step as in real-time recurrent learning, each earlier step's share
decayed by γ = 1 − 1/K per step (K = ∞: the whole run; K = 1: the one-step objective):

    Z_{t+1} = γ·(Z_t + r·dU) + (θ_{t+1} − θ_t),   Z^s_{t+1} = γ·dS,

with (dU, dS) the update's and the optimizer state's derivatives along (Z_t, H·Z_t, Z^s_t),
by ``torch.func.jvp`` through the same update rule the step takes, and H·Z_t the base
objective's Hessian-vector product on the training batch (double backward, the step's
dropout mask replayed, the guard's weights held fixed). a is treated as one number through
the window, as RTRL does; exact for fixed a (tested against a finite difference through K
steps). Cost: one Hessian-vector product and one update JVP per meta step; memory: one copy
of θ and of the optimizer's floating-point state. With a horizon H in the meta-objective
(``horizon="momentum"``) the carried part is read with ∇L_T where the meta-objective reads
it, and this step's own share H-fold, as without the trace. Steps without a meta step (no
validation batch) leave Z as it is.
"""

from __future__ import annotations

import math

import torch

from adaloss.inner import float_entries
from adaloss.modelcalls import call, running_stats_frozen

Tensors = tuple[torch.Tensor, ...]
FloatState = list[dict[str, torch.Tensor]]  # per parameter: the state's float tensors


def check_lr_horizon(value: object) -> None:
    """``lr_horizon`` is None or a number K ≥ 1 (``math.inf``: the whole run)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValueError(f"lr_horizon must be None or a number of steps >= 1; got {value!r}")


def check_saved_trace(saved: dict | None, params) -> None:
    """A checkpoint's trace must have the model's shapes (it is loaded before any step)."""
    z = (saved or {}).get("params")
    if z is not None and [t.shape for t in z] != [p.shape for p in params]:
        raise ValueError(
            "the checkpoint's step_trace (lr_horizon) does not have the model's parameter "
            "shapes: was it saved from another model?"
        )


class StepLengthTrace:
    """Z = dθ/da and Z^s = d(optimizer state)/da, decayed by γ = 1 − 1/K per step."""

    def __init__(self, horizon: float) -> None:
        check_lr_horizon(horizon)
        self.decay = 1.0 if math.isinf(horizon) else 1.0 - 1.0 / horizon
        self.params: Tensors | None = None  # None: zero (nothing carried yet)
        self.state: FloatState | None = None

    def carried(self, step, params: Tensors, grads: Tensors, factor) -> Carried | None:
        """γ·(Z_t + r·dU) and γ·dS for this step (``step``: the engine's ``MetaStep``), or
        None when nothing is carried."""
        if self.params is None:
            return None
        hz = step.replicas.mean(hessian_vector(step, params, self.params))
        du, ds = step.update.jvp(params, grads, self.params, tuple(hz), self.state)
        moved = tuple(z + factor * d for z, d in zip(self.params, du, strict=True))
        return Carried(
            tuple(torch._foreach_mul(moved, self.decay)),
            [{k: self.decay * v for k, v in s.items()} for s in ds],
        )

    @property
    def value(self) -> tuple:
        """(Z, Z^s): replaced whole by each committed meta step, never written into, so a
        transaction keeps a step's trace by keeping this pair."""
        return self.params, self.state

    @value.setter
    def value(self, value: tuple) -> None:
        self.params, self.state = value

    def state_dict(self) -> dict:
        return {"params": self.params, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.params, self.state = state.get("params"), state.get("state")


class Carried:
    """What earlier steps' lengths do to θ_{t+1} and the state (the trace without this step)."""

    def __init__(self, params: Tensors, state: FloatState) -> None:
        self.params = params
        self.state = state

    def gradient(self, v: Tensors) -> torch.Tensor:
        """⟨∇L_T(θ_{t+1}), γ·(Z_t + r·dU)⟩: earlier steps' share of dL_T/da."""
        return sum((vi * z).sum() for vi, z in zip(v, self.params, strict=True))


def next_trace(carried: Carried | None, new_params: Tensors, params: Tensors, new_state):
    """(Z_{t+1}, Z^s_{t+1}): the carried part plus this step's own r·U (the state's own
    derivative in a is 0: no supported optimizer's state depends on its lr)."""
    own = tuple(n - p for n, p in zip(new_params, params, strict=True))
    if carried is None:
        zeros = [{k: torch.zeros_like(v) for k, v in float_entries(s).items()}
                 for _, group in new_state for s in group]  # fmt: skip
        return own, zeros
    return tuple(c + o for c, o in zip(carried.params, own, strict=True)), carried.state


def hessian_vector(step, params: Tensors, tangents: Tensors) -> Tensors:
    """H·Z: the base objective's Hessian in θ at θ_t on the training batch, along Z, by
    double backward (as the unroll engine differentiates; forward over reverse trips on
    ``mse_loss``'s backward); the guard's weights s, c and ϕ are constants here."""
    leaves = tuple(p.detach().requires_grad_() for p in params)
    with step.rng.replay(), running_stats_frozen(step.model):
        objective = step.learned_loss(call(step.model, step.names, leaves, step.x))
    gradient = torch.autograd.grad(objective, leaves, create_graph=True)
    along = sum((g * z).sum() for g, z in zip(gradient, tangents, strict=True))
    hz = torch.autograd.grad(along, leaves, allow_unused=True)
    return tuple(torch.zeros_like(p) if h is None else h for p, h in zip(leaves, hz, strict=True))
