"""The base optimizer's update as a differentiable function, via TorchOpt.

The user's ``torch.optim`` optimizer stays authoritative: its ``param_groups``
(lr, momentum, betas, …) are read at every step, so schedulers keep working,
and its momentum / Adam moments live in ``optimizer.state`` in torch's own
format. Each step we build TorchOpt's functional optimizer from the current
hyper-parameters (``torchopt.sgd`` / ``adam`` / ``adamw``, the transforms
behind MetaSGD / MetaAdam / MetaAdamW), hand it torch's state tensors, and
write the new state back. TorchOpt's state layout coincides with torch's
(momentum buffer = trace, exp_avg = mu, exp_avg_sq = nu, step = count), so the
hand-over costs no copies.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchopt
from torch import nn
from torchopt.transform.scale_by_adam import ScaleByAdamState
from torchopt.transform.trace import TraceState

SUPPORTED = (
    "torch.optim.SGD (lr, momentum, dampening, nesterov, weight_decay), "
    "torch.optim.Adam and torch.optim.AdamW (lr, betas, eps, weight_decay)"
)

Tensors = tuple[torch.Tensor, ...]
ADAM_EPS_ROOT = 1e-30


def _unsupported(message: str) -> TypeError:
    return TypeError(f"{message}; adaloss supports {SUPPORTED}")


HYPERPARAMETERS = {
    torch.optim.SGD: ("lr", "momentum", "dampening", "nesterov", "weight_decay"),
    torch.optim.Adam: ("lr", "betas", "eps", "weight_decay"),
    torch.optim.AdamW: ("lr", "betas", "eps", "weight_decay"),
}
"""The options each supported optimizer's update reads from a param group."""

STATE_KEYS = {
    torch.optim.SGD: ("momentum_buffer",),
    torch.optim.Adam: ("step", "exp_avg", "exp_avg_sq"),
    torch.optim.AdamW: ("step", "exp_avg", "exp_avg_sq"),
}
"""The per-parameter state each supported optimizer keeps (torch's names)."""


def check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Raise TypeError unless ``optimizer`` and all its options can be made differentiable."""
    if type(optimizer) not in HYPERPARAMETERS:
        raise _unsupported(f"unsupported base optimizer {type(optimizer).__name__}")
    for i, group in enumerate(optimizer.param_groups):
        check_group(f"param_groups[{i}]", group)


def check_group(where: str, group: dict) -> None:
    """Raise TypeError for an option of one param group that adaloss cannot honour."""
    for flag in ("maximize", "amsgrad", "differentiable"):
        if group.get(flag, False):
            raise _unsupported(f"{where} sets {flag}=True")
    if isinstance(group["lr"], torch.Tensor) and group["lr"].requires_grad:
        raise _unsupported(f"{where} has a differentiable tensor lr")
    if group.get("capturable", False):
        on_cpu = [p for p in group["params"] if p.device.type == "cpu"]
        if on_cpu:
            raise _unsupported(
                f"{where} sets capturable=True but holds parameters on the CPU "
                "(capturable is for CUDA graphs: build the optimizer with capturable=False)"
            )


NewState = list[tuple[list[nn.Parameter], tuple]]
"""Per param group: its trainable parameters and their new TorchOpt state."""


class DifferentiableUpdate:
    """θ_{t+1} = θ_t + U(g, s_t) for the wrapped optimizer, as a pure function of g."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer

    def groups(self) -> list[list[nn.Parameter]]:
        """Trainable parameters of each param group, in optimizer order."""
        return [[p for p in g["params"] if p.requires_grad] for g in self.optimizer.param_groups]

    def params(self) -> list[nn.Parameter]:
        """All trainable parameters the optimizer updates, flattened in group order."""
        return [p for group in self.groups() for p in group]

    def _transform(self, group: dict, *, started: bool) -> torchopt.base.GradientTransformation:
        lr = float(group["lr"])
        if isinstance(self.optimizer, torch.optim.SGD):
            tx = torchopt.sgd(
                lr,
                momentum=group["momentum"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
            )
        else:
            decoupled = isinstance(self.optimizer, torch.optim.AdamW) or group.get(
                "decoupled_weight_decay", False
            )
            tx = (torchopt.adamw if decoupled else torchopt.adam)(
                lr,
                betas=tuple(group["betas"]),
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                # √v has an infinite derivative at v = 0 (a gradient that is exactly zero,
                # e.g. a dead ReLU), which turns the hypergradient into NaN; a root term far
                # below any representable gradient² keeps it finite and the update unchanged.
                eps_root=ADAM_EPS_ROOT,
            )
        if started:
            # TorchOpt's momentum trace treats its first call like torch's first step
            # (buffer = gradient, no dampening); after that torch's optimizer has a
            # buffer, so mark the transform as already started with an empty update.
            tx.update((), tx.init(()), params=(), inplace=False)
        return tx

    def _state(self, params: list[nn.Parameter], template: tuple) -> tuple:
        """TorchOpt state for ``params`` holding the tensors of torch's own state."""
        # optimizer.state is a defaultdict: read with .get so nothing is inserted.
        states = [self.optimizer.state.get(p, {}) for p in params]

        def tensor(s: dict, key: str, p: nn.Parameter) -> torch.Tensor:
            value = s.get(key)
            return value if value is not None else torch.zeros_like(p)

        pairs = list(zip(states, params, strict=True))
        filled = []
        for part in template:
            if isinstance(part, TraceState):
                part = part._replace(trace=[tensor(s, "momentum_buffer", p) for s, p in pairs])
            elif isinstance(part, ScaleByAdamState):
                part = part._replace(
                    mu=[tensor(s, "exp_avg", p) for s, p in pairs],
                    nu=[tensor(s, "exp_avg_sq", p) for s, p in pairs],
                    count=[
                        s["step"].to(torch.int64)
                        if "step" in s
                        else torch.zeros((), dtype=torch.int64)
                        for s in states
                    ],
                )
            filled.append(part)
        return tuple(filled)

    def function(
        self, params: Tensors, lr: float | None = None, previous: NewState | None = None
    ) -> Callable[[Tensors], tuple[Tensors, NewState]]:
        """Return ``U(grads) -> (updates, new_state)`` at ``params`` (flat, in group order).

        ``U`` is differentiable in ``grads``; the new state is returned beside the
        updates (not written anywhere) so that ``torch.func.vjp(U, g, has_aux=True)``
        works and a rejected step changes nothing. ``lr`` overrides every group's
        learning rate (Meta-LR evaluates the update at lr = 1). ``previous`` continues
        from the new state of an earlier call instead of the torch optimizer's state
        (several differentiable steps in a row, as in offline initialization).
        """
        plan = []
        groups = [
            (g, t) for g, t in zip(self.optimizer.param_groups, self.groups(), strict=True) if t
        ]
        for i, (group, trainable) in enumerate(groups):
            options = group if lr is None else {**group, "lr": lr}
            if previous is None:
                tx = self._transform(
                    options, started=any(self.optimizer.state.get(p) for p in trainable)
                )
                state = self._state(trainable, tx.init(()))
            else:
                tx, state = self._transform(options, started=True), previous[i][1]
            plan.append((trainable, tx, state))

        def update(grads: Tensors) -> tuple[Tensors, NewState]:
            updates: list[torch.Tensor] = []
            new_state: NewState = []
            start = 0
            for trainable, tx, state in plan:
                stop = start + len(trainable)
                u, group_state = tx.update(
                    tuple(grads[start:stop]), state, params=tuple(params[start:stop]), inplace=False
                )
                updates.extend(u)
                new_state.append((trainable, group_state))
                start = stop
            return tuple(updates), new_state

        return update

    def gradient_scales(self) -> list[float] | None:
        """Per parameter, the constant c with ∂U/∂g = c·I, or None if U is not linear in g.

        torch's SGD: d = g + λθ; with momentum the buffer is d on the first step and
        μ·buf + (1−τ)·d after; the step is −lr·buf, or −lr·(d + μ·buf) with Nesterov.
        So c = −lr·κ with κ = 1 (plain), 1 then 1−τ (momentum), 1+μ (Nesterov, τ = 0).
        The engine-equivalence tests hold this against TorchOpt's VJP.
        """
        if not isinstance(self.optimizer, torch.optim.SGD):
            return None
        scales: list[float] = []
        for group, trainable in zip(self.optimizer.param_groups, self.groups(), strict=True):
            momentum = group["momentum"]
            started = any(self.optimizer.state.get(p) for p in trainable)
            if momentum == 0:
                kappa = 1.0
            elif group["nesterov"]:
                kappa = 1.0 + momentum
            else:
                kappa = 1.0 - group["dampening"] if started else 1.0
            scales += [-float(group["lr"]) * kappa] * len(trainable)
        return scales

    def commit(self, new_state: NewState) -> None:
        """Write new TorchOpt state into the torch optimizer, in torch's own format."""
        state = self.optimizer.state
        for trainable, group_state in new_state:
            for part in group_state:
                if isinstance(part, TraceState):
                    for p, buf in zip(trainable, part.trace, strict=True):
                        state[p]["momentum_buffer"] = buf.detach()
                elif isinstance(part, ScaleByAdamState):
                    for p, m, v, c in zip(trainable, part.mu, part.nu, part.count, strict=True):
                        state[p]["exp_avg"] = m.detach()
                        state[p]["exp_avg_sq"] = v.detach()
                        state[p]["step"] = c.detach().to(torch.get_default_dtype())
