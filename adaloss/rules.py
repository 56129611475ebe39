"""Each supported ``torch.optim`` optimizer's step as a pure, differentiable function.

A rule maps one param group's options, θ_t, the gradients g and the parameters'
entries of ``optimizer.state`` (torch's own keys and dtypes) to the update
θ_{t+1} − θ_t and the new state entries, using only out-of-place torch ops on g,
so autograd (the unroll engine) and ``torch.func.vjp`` (the forward engine) go
through it. Keeping torch's state format on both sides lets the optimizer's own
``step()`` (non-meta steps) and the differentiable step take turns.

SGD, Adam/AdamW, Adadelta and Adamax run TorchOpt's functional optimizers; their
state is translated to and from torch's keys. RMSprop, Adagrad, RAdam and NAdam
are written here, following torch's single-tensor kernels line by line, because
TorchOpt's versions take √ of an accumulator that is exactly zero for a
parameter whose gradient has always been zero (a dead ReLU unit): √'s infinite
derivative there makes the hypergradient NaN (0·∞), so every meta step would be
rejected. Like the Adam path (TorchOpt's ``eps_root``), :func:`_sqrt` adds 1e-30
under the root, which leaves every update unchanged to far below rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

import torch
import torchopt
from torchopt.transform.scale_by_adadelta import ScaleByAdadeltaState
from torchopt.transform.scale_by_adam import ScaleByAdamState
from torchopt.transform.scale_by_adamax import ScaleByAdamaxState
from torchopt.transform.trace import TraceState

Tensors = tuple[torch.Tensor, ...]
State = dict[str, torch.Tensor]
"""One parameter's entry of ``optimizer.state``: torch's keys ('step', 'exp_avg', …)."""
RuleFn = Callable[[dict, Tensors, Tensors, list[State]], tuple[Tensors, list[State]]]

SQRT_ROOT = 1e-30
"""Added under every square root of a gradient accumulator (see the module docstring)."""


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    return (x + SQRT_ROOT).sqrt()


def _scalar_dtype() -> torch.dtype:
    """The dtype torch.optim gives a fresh 'step' (torch.optim.optimizer._get_scalar_dtype)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _step(state: State, p: torch.Tensor, group: dict) -> torch.Tensor:
    """This parameter's step count, or a fresh zero like the one torch would create."""
    step = state.get("step")
    if step is not None:
        return step
    on_device = group.get("capturable", False) or group.get("fused", False)
    return torch.zeros((), dtype=_scalar_dtype(), device=p.device if on_device else None)


def _get(state: State, key: str, p: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    value = state.get(key)
    if value is not None:
        return value
    return torch.full_like(p, fill, memory_format=torch.preserve_format)


def _by_key(
    key: Callable[[State], Hashable],
    run: Callable[[Hashable, Tensors, Tensors, list[State]], tuple[Tensors, list[State]]],
    params: Tensors,
    grads: Tensors,
    states: list[State],
) -> tuple[Tensors, list[State]]:
    """Apply ``run`` to the parameters grouped by ``key(state)``, results in input order.

    TorchOpt keeps some things once per list of parameters (Adamax's step count, the
    momentum trace's first-call flag) where torch keeps them per parameter; the
    parameters of a group nearly always agree, so this is one call in practice.
    """
    buckets: dict[Hashable, list[int]] = {}
    for i, s in enumerate(states):
        buckets.setdefault(key(s), []).append(i)
    updates: list = [None] * len(params)
    new_states: list = [None] * len(params)
    for k, idx in buckets.items():
        u, new = run(
            k, tuple(params[i] for i in idx), tuple(grads[i] for i in idx), [states[i] for i in idx]
        )
        for j, i in enumerate(idx):
            updates[i], new_states[i] = u[j], new[j]
    return tuple(updates), new_states


def _with(template: tuple, cls: type, **fields) -> tuple:
    """TorchOpt chain state ``template`` with the ``cls`` part's fields replaced."""
    return tuple(part._replace(**fields) if isinstance(part, cls) else part for part in template)


def _part(state: tuple, cls: type):
    return next(part for part in state if isinstance(part, cls))


def _run(tx, state: tuple, params: Tensors, grads: Tensors) -> tuple[Tensors, tuple]:
    return tx.update(tuple(grads), state, params=tuple(params), inplace=False)


# -- TorchOpt-backed ---------------------------------------------------------------------
def sgd(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    momentum = group["momentum"]

    def run(started, params, grads, states):
        tx = torchopt.sgd(
            float(group["lr"]),
            momentum=momentum,
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
        )
        if started:
            # TorchOpt's momentum trace treats its first call like torch's first step
            # (buffer = gradient, no dampening); once torch has a buffer, mark the
            # transform as already started with an empty update.
            tx.update((), tx.init(()), params=(), inplace=False)
        trace = [_get(s, "momentum_buffer", p) for s, p in zip(states, params, strict=True)]
        u, new = _run(tx, _with(tx.init(()), TraceState, trace=trace), params, grads)
        if momentum == 0:
            return u, [{} for _ in params]
        return u, [{"momentum_buffer": b} for b in _part(new, TraceState).trace]

    return _by_key(lambda s: s.get("momentum_buffer") is not None, run, params, grads, states)


def adam(group: dict, params: Tensors, grads: Tensors, states: list[State], *, decoupled=False):
    decoupled = decoupled or group.get("decoupled_weight_decay", False)
    tx = (torchopt.adamw if decoupled else torchopt.adam)(
        float(group["lr"]),
        betas=tuple(group["betas"]),
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        eps_root=SQRT_ROOT,  # TorchOpt adds it under the root: see the module docstring
    )
    steps = [_step(s, p, group) for s, p in zip(states, params, strict=True)]
    state = _with(
        tx.init(()),
        ScaleByAdamState,
        mu=[_get(s, "exp_avg", p) for s, p in zip(states, params, strict=True)],
        nu=[_get(s, "exp_avg_sq", p) for s, p in zip(states, params, strict=True)],
        count=[step.to(torch.int64) for step in steps],
    )
    u, new = _run(tx, state, params, grads)
    part = _part(new, ScaleByAdamState)
    return u, [
        {"step": step + 1, "exp_avg": m, "exp_avg_sq": v}
        for step, m, v in zip(steps, part.mu, part.nu, strict=True)
    ]


def adamw(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    return adam(group, params, grads, states, decoupled=True)


def adadelta(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    # TorchOpt: δ = g·√((acc_delta + ε)/(square_avg + ε)); torch: √(acc_delta + ε)/√(sq + ε)·g.
    tx = torchopt.adadelta(
        float(group["lr"]), rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"]
    )
    pairs = list(zip(states, params, strict=True))
    state = _with(
        tx.init(()),
        ScaleByAdadeltaState,
        mu=[_get(s, "square_avg", p) for s, p in pairs],
        nu=[_get(s, "acc_delta", p) for s, p in pairs],
    )
    u, new = _run(tx, state, params, grads)
    part = _part(new, ScaleByAdadeltaState)
    return u, [
        {"step": _step(s, p, group) + 1, "square_avg": sq, "acc_delta": acc}
        for (s, p), sq, acc in zip(pairs, part.mu, part.nu, strict=True)
    ]


def adamax(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    def run(_, params, grads, states):
        # TorchOpt's Adamax keeps one Python step count t (t = torch's step + 1 before the step).
        tx = torchopt.adamax(
            float(group["lr"]),
            betas=tuple(group["betas"]),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
        )
        pairs = list(zip(states, params, strict=True))
        steps = [_step(s, p, group) for s, p in pairs]
        state = _with(
            tx.init(()),
            ScaleByAdamaxState,
            mu=[_get(s, "exp_avg", p) for s, p in pairs],
            nu=[_get(s, "exp_inf", p) for s, p in pairs],
            t=int(steps[0]) + 1,
        )
        u, new = _run(tx, state, params, grads)
        part = _part(new, ScaleByAdamaxState)
        return u, [
            {"step": step + 1, "exp_avg": m, "exp_inf": n}
            for step, m, n in zip(steps, part.mu, part.nu, strict=True)
        ]

    return _by_key(lambda s: int(s["step"]) if "step" in s else 0, run, params, grads, states)


# -- written here (torch's single-tensor kernels, out of place) ---------------------------
def rmsprop(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    lr, alpha, eps = float(group["lr"]), group["alpha"], group["eps"]
    weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
    updates, new_states = [], []
    for p, g, s in zip(params, grads, states, strict=True):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        square_avg = _get(s, "square_avg", p).mul(alpha).addcmul(g, g, value=1 - alpha)
        new = {"step": _step(s, p, group) + 1, "square_avg": square_avg}
        if centered:
            grad_avg = _get(s, "grad_avg", p).lerp(g, 1 - alpha)
            avg = _sqrt(square_avg.addcmul(grad_avg, grad_avg, value=-1))
            new["grad_avg"] = grad_avg
        else:
            avg = _sqrt(square_avg)
        avg = avg.add(eps)
        if momentum > 0:
            buf = _get(s, "momentum_buffer", p).mul(momentum).addcdiv(g, avg)
            new["momentum_buffer"] = buf
            updates.append(buf.mul(-lr))
        else:
            updates.append(g.div(avg).mul(-lr))
        new_states.append(new)
    return tuple(updates), new_states


def adagrad(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    lr, lr_decay, eps = float(group["lr"]), group["lr_decay"], group["eps"]
    weight_decay, initial = group["weight_decay"], group["initial_accumulator_value"]
    updates, new_states = [], []
    for p, g, s in zip(params, grads, states, strict=True):
        step = _step(s, p, group) + 1
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        clr = lr / (1 + (float(step) - 1) * lr_decay)
        state_sum = _get(s, "sum", p, fill=initial).addcmul(g, g, value=1)
        std = _sqrt(state_sum).add(eps)
        updates.append(g.div(std).mul(-clr))
        new_states.append({"step": step, "sum": state_sum})
    return tuple(updates), new_states


def _weight_decay(group: dict, p: torch.Tensor, g: torch.Tensor, lr: float):
    """(g with L2 decay, decoupled decay's share of the update or None), as torch's RAdam/NAdam."""
    weight_decay = group["weight_decay"]
    if weight_decay == 0:
        return g, None
    if group.get("decoupled_weight_decay", False):
        return g, p.mul(-lr * weight_decay)  # torch: param.mul_(1 - lr * weight_decay)
    return g.add(p, alpha=weight_decay), None


def radam(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    lr, eps = float(group["lr"]), group["eps"]
    beta1, beta2 = group["betas"]
    updates, new_states = [], []
    for p, g, s in zip(params, grads, states, strict=True):
        step_t = _step(s, p, group) + 1
        step = float(step_t)
        g, decay = _weight_decay(group, p, g, lr)
        exp_avg = _get(s, "exp_avg", p).lerp(g, 1 - beta1)
        exp_avg_sq = _get(s, "exp_avg_sq", p).mul(beta2).addcmul(g, g, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            adaptive_lr = (bias_correction2**0.5) / _sqrt(exp_avg_sq).add(eps)
            u = (corrected * lr * adaptive_lr * rect).neg()
        else:
            u = (corrected * lr).neg()
        updates.append(u if decay is None else decay + u)
        new_states.append({"step": step_t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq})
    return tuple(updates), new_states


def nadam(group: dict, params: Tensors, grads: Tensors, states: list[State]):
    lr, eps, momentum_decay = float(group["lr"]), group["eps"], group["momentum_decay"]
    beta1, beta2 = group["betas"]
    updates, new_states = [], []
    for p, g, s in zip(params, grads, states, strict=True):
        step_t = _step(s, p, group) + 1
        step = float(step_t)
        bias_correction2 = 1 - beta2**step
        g, decay = _weight_decay(group, p, g, lr)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product = s.get("mu_product")
        if mu_product is None:
            mu_product = torch.ones_like(step_t)
        mu_product = mu_product * mu  # a tensor in torch's dtype, rounded as torch rounds it
        mu_product_next = float(mu_product) * mu_next
        exp_avg = _get(s, "exp_avg", p).lerp(g, 1 - beta1)
        exp_avg_sq = _get(s, "exp_avg_sq", p).mul(beta2).addcmul(g, g, value=1 - beta2)
        denom = _sqrt(exp_avg_sq.div(bias_correction2)).add(eps)
        grad_term = g.div(denom).mul(-lr * (1.0 - mu) / (1.0 - float(mu_product)))
        momentum_term = exp_avg.div(denom).mul((-lr * mu_next) / (1.0 - mu_product_next))
        u = grad_term + momentum_term
        updates.append(u if decay is None else decay + u)
        new_states.append(
            {"step": step_t, "mu_product": mu_product, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        )
    return tuple(updates), new_states


# -- the table ---------------------------------------------------------------------------
RULES: dict[type, tuple[RuleFn, str]] = {
    torch.optim.SGD: (sgd, "lr, momentum, dampening, nesterov, weight_decay"),
    torch.optim.Adam: (adam, "lr, betas, eps, weight_decay, decoupled_weight_decay"),
    torch.optim.AdamW: (adamw, "lr, betas, eps, weight_decay"),
    torch.optim.RMSprop: (rmsprop, "lr, alpha, eps, weight_decay, momentum, centered"),
    torch.optim.Adagrad: (
        adagrad,
        "lr, lr_decay, weight_decay, initial_accumulator_value, eps",
    ),
    torch.optim.Adadelta: (adadelta, "lr, rho, eps, weight_decay"),
    torch.optim.Adamax: (adamax, "lr, betas, eps, weight_decay"),
    torch.optim.RAdam: (radam, "lr, betas, eps, weight_decay, decoupled_weight_decay"),
    torch.optim.NAdam: (
        nadam,
        "lr, betas, eps, weight_decay, momentum_decay, decoupled_weight_decay",
    ),
}

SUPPORTED = ", ".join(f"torch.optim.{cls.__name__} ({opts})" for cls, (_, opts) in RULES.items())

REJECTED_FLAGS = ("maximize", "amsgrad")
"""Options that change the update and have no differentiable counterpart here."""
