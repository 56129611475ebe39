"""The base optimizer's update as a differentiable function.

The user's ``torch.optim`` optimizer stays authoritative: its ``param_groups``
(lr, momentum, betas, …) are read at every step, so schedulers keep working,
and its moments live in ``optimizer.state`` in torch's own format. Each step
the optimizer's rule (``adaloss.rules``: TorchOpt's functional optimizers, or
torch's kernels rewritten out of place) maps the current hyper-parameters,
gradients and torch's state tensors to the update and new state entries, which
``commit`` writes back under torch's keys. So the optimizer's own ``step()``
(non-meta steps) and the differentiable step can take turns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import jvp

from adaloss import rules
from adaloss.rules import SUPPORTED, State

__all__ = ["SUPPORTED", "DifferentiableUpdate", "NewState", "check_optimizer"]

Tensors = tuple[torch.Tensor, ...]


def _unsupported(message: str) -> TypeError:
    return TypeError(f"{message}; adaloss supports {SUPPORTED}")


HYPERPARAMETERS = {
    cls: tuple(o.strip() for o in options.split(",") if o.strip() != "decoupled_weight_decay")
    for cls, (_, options) in rules.RULES.items()
}
"""The options each supported optimizer's update reads from a param group (checkpoints from
before torch added ``decoupled_weight_decay`` lack it; it is compared where both have it)."""

STATE_KEYS = {
    torch.optim.SGD: ("momentum_buffer",),
    torch.optim.Adam: ("step", "exp_avg", "exp_avg_sq"),
    torch.optim.AdamW: ("step", "exp_avg", "exp_avg_sq"),
    torch.optim.RMSprop: ("step", "square_avg", "momentum_buffer", "grad_avg"),
    torch.optim.Adagrad: ("step", "sum"),
    torch.optim.Adadelta: ("step", "square_avg", "acc_delta"),
    torch.optim.Adamax: ("step", "exp_avg", "exp_inf"),
    torch.optim.RAdam: ("step", "exp_avg", "exp_avg_sq"),
    torch.optim.NAdam: ("step", "exp_avg", "exp_avg_sq", "mu_product"),
}
"""The per-parameter state each supported optimizer keeps (torch's names)."""


def check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Raise TypeError unless ``optimizer`` and all its options can be made differentiable."""
    if type(optimizer) not in rules.RULES:
        raise _unsupported(f"unsupported base optimizer {type(optimizer).__name__}")
    for i, group in enumerate(optimizer.param_groups):
        check_group(f"param_groups[{i}]", group)


def check_group(where: str, group: dict) -> None:
    """Raise TypeError for an option of one param group that adaloss cannot honour."""
    for flag in (*rules.REJECTED_FLAGS, "differentiable"):
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


def float_entries(state: State) -> dict[str, torch.Tensor]:
    """The entries of one parameter's optimizer state that a tangent follows (not counters)."""
    return {
        k: v
        for k, v in state.items()
        if k != "step" and torch.is_tensor(v) and v.is_floating_point()
    }


NewState = list[tuple[list[nn.Parameter], list[State]]]
"""Per param group: its trainable parameters and their new state entries, in torch's format."""


class DifferentiableUpdate:
    """θ_{t+1} = θ_t + U(g, s_t) for the wrapped optimizer, as a pure function of g."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        self.rule = rules.RULES[type(optimizer)][0]

    def groups(self) -> list[list[nn.Parameter]]:
        """Trainable parameters of each param group, in optimizer order."""
        return [[p for p in g["params"] if p.requires_grad] for g in self.optimizer.param_groups]

    def params(self) -> list[nn.Parameter]:
        """All trainable parameters the optimizer updates, flattened in group order."""
        return [p for group in self.groups() for p in group]

    def _states(self, params: list[nn.Parameter]) -> list[State]:
        # optimizer.state is a defaultdict: read with .get so nothing is inserted.
        return [dict(self.optimizer.state.get(p, {})) for p in params]

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
            states = self._states(trainable) if previous is None else previous[i][1]
            plan.append((trainable, options, states))

        def update(grads: Tensors) -> tuple[Tensors, NewState]:
            updates: list[torch.Tensor] = []
            new_state: NewState = []
            start = 0
            for trainable, options, states in plan:
                stop = start + len(trainable)
                u, group_state = self.rule(
                    options, tuple(params[start:stop]), tuple(grads[start:stop]), states
                )
                updates.extend(u)
                new_state.append((trainable, group_state))
                start = stop
            return tuple(updates), new_state

        return update

    def jvp(self, params: Tensors, grads: Tensors, tangents: Tensors, grad_tangents: Tensors,
            state_tangents: list[dict]) -> tuple[Tensors, list[dict]]:  # fmt: skip
        """The update's and the new state's derivatives along (θ, g, state) tangents, by
        ``torch.func.jvp`` through the step's own rule (``adaloss.steptrace``). The state's
        tangents are per parameter, for its floating-point entries (not step counters)."""
        plan, states = [], []
        for group, trainable in zip(self.optimizer.param_groups, self.groups(), strict=True):
            if trainable:
                plan.append((len(trainable), group))
                states += self._states(trainable)
        floats = [float_entries(s) for s in states]
        others = [
            {k: v for k, v in s.items() if k not in f} for s, f in zip(states, floats, strict=True)
        ]

        def update(params, grads, floats):
            updates, new_floats, start = [], [], 0
            for size, options in plan:
                stop = start + size
                pairs = zip(others[start:stop], floats[start:stop], strict=True)
                group_states = [{**o, **f} for o, f in pairs]
                u, new = self.rule(options, params[start:stop], grads[start:stop], group_states)
                updates.extend(u)
                new_floats.extend(float_entries(n) for n in new)
                start = stop
            return tuple(updates), new_floats

        primals = (tuple(params), tuple(grads), floats)
        return jvp(update, primals, (tuple(tangents), tuple(grad_tangents), state_tangents))[1]

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

    def momentum_horizons(self) -> list[float]:
        """Per parameter, 1/(1−β) for the group's momentum β (SGD's and RMSprop's
        ``momentum``, the Adam family's β₁; 1 without momentum).

        One update's gradient keeps moving θ on later steps as its momentum decays: in
        all, 1/(1−β) times the step it takes now (exactly, for heavy-ball SGD with zero
        later gradients; nearly, for Adam, whose β₂ decays far more slowly). Read at
        every step, so a momentum schedule (OneCycleLR's) is followed.
        """
        horizons: list[float] = []
        for group, trainable in zip(self.optimizer.param_groups, self.groups(), strict=True):
            beta = group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"the momentum horizon needs a momentum in [0, 1), got {beta}")
            horizons += [1.0 / (1.0 - float(beta))] * len(trainable)
        return horizons

    def commit(self, new_state: NewState) -> None:
        """Write the new state into the torch optimizer, under torch's own keys."""
        state = self.optimizer.state
        for trainable, group_state in new_state:
            for p, entries in zip(trainable, group_state, strict=True):
                for key, value in entries.items():
                    state[p][key] = value.detach()
