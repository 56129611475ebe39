"""What a step may change, saved just before it is written and put back on any exception.

A step writes in stages: the training forward updates the model's buffers (BatchNorm
running statistics), a plain step runs torch's kernels on θ and the base optimizer's
state in place, a meta step's commit writes θ, the base optimizer's state, ϕ and the
meta optimizer's state. Each stage calls the matching ``save_*`` method right before it
writes, so a step that fails early copies nothing it did not touch and the common path
copies only what torch changes in place (the buffers; θ and the optimizer state only on
steps that run the base optimizer's own kernels). ``Transaction`` restores everything
saved when its ``with`` block raises, ``KeyboardInterrupt`` included, and re-raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

import torch
from torch import nn

from adaloss.modelcalls import RNGReplay

_SCALARS = (int, float, bool, str, type(None))


class OptimizerState:
    """The per-parameter state and the hyper-parameters of a torch optimizer, for a restore.

    ``clone=True`` copies the state tensors (torch's kernels update them in place);
    ``clone=False`` keeps references, enough when the writer replaces tensors instead.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor], clone: bool
    ) -> None:
        self.optimizer = optimizer
        self.clone = clone
        self.groups = [(g, dict(g)) for g in optimizer.param_groups]
        self.entries = []
        for p in params:
            entry = optimizer.state.get(p)  # .get: the state is a defaultdict
            saved = None
            if entry is not None:
                saved = {
                    k: (v, v.clone() if clone and isinstance(v, torch.Tensor) else None)
                    for k, v in entry.items()
                }
            self.entries.append((p, entry, saved))

    def restore(self, groups: bool = True) -> None:
        state = self.optimizer.state
        with torch.no_grad():
            for p, entry, saved in self.entries:
                if entry is None:
                    state.pop(p, None)
                    continue
                entry.clear()
                for key, (value, copy) in saved.items():
                    if copy is not None:
                        value.copy_(copy)
                    entry[key] = value
                state[p] = entry
        if groups:
            self.restore_groups()

    def restore_groups(self) -> None:
        for group, saved in self.groups:
            group.clear()
            group.update(saved)


class Transaction:
    """Saves, stage by stage, what a step of ``opt`` writes; restores it all on an exception.

    ``opt`` is an ``OnlineMetaOptimizer``. Its plain attributes (step counters, the
    engine name, the divergence watch) are saved on entry: they are a few scalars.
    """

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.attrs = {k: v for k, v in vars(opt).items() if isinstance(v, _SCALARS)}
        self.rng: RNGReplay | None = None
        self.buffers: list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]] | None = None
        self.params: list[tuple[nn.Parameter, torch.Tensor]] | None = None
        self.base: OptimizerState | None = None
        self.meta: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor | None]] | None = None
        self.meta_state: OptimizerState | None = None
        self.loss_inputs: dict | None = None  # the learned loss's input normalization
        self.trace: tuple | None = None  # (StepLengthTrace, its value before the step)

    # -- saving, each at most once --------------------------------------------------------
    def save_rng(self, rng: RNGReplay) -> None:
        if self.rng is None:
            self.rng = rng

    def save_buffers(self) -> None:
        """The model's buffers (BatchNorm statistics and counters): small, saved every step."""
        if self.buffers is None:
            self.buffers = [
                (module, name, b, b.detach().clone())
                for module in self.opt.model.modules()
                for name, b in module._buffers.items()
                if b is not None
            ]

    def save_params(self) -> None:
        """θ, copied: only before something writes into the parameters."""
        if self.params is None:
            self.params = [(p, p.detach().clone()) for p in self.opt.update.params()]

    def save_base_state(self, clone: bool) -> None:
        if self.base is None:
            self.base = OptimizerState(self.opt.base_optimizer, self.opt.update.params(), clone)

    def save_meta(self) -> None:
        """ϕ, its gradients, the meta optimizer's state (a small network) and the learned
        loss's input normalization (a first step's warm start sets it)."""
        if self.meta is None:
            self.meta = [(p, p.detach().clone(), p.grad) for p in self.opt.meta_params]
            loss = getattr(self.opt, "loss", None)
            if hasattr(loss, "normalize_inputs"):
                self.loss_inputs = loss.get_extra_state()
            trace = getattr(self.opt, "step_trace", None)  # lr_horizon's dθ/da, replaced whole
            if trace is not None:
                self.trace = (trace, trace.value)
            if self.opt.meta_optimizer is not None:
                self.meta_state = OptimizerState(
                    self.opt.meta_optimizer, self.opt.meta_params, clone=True
                )

    # -- restoring ------------------------------------------------------------------------
    def restore_buffers(self) -> None:
        if self.buffers is None:
            return
        with torch.no_grad():
            for module, name, b, saved in self.buffers:
                module._buffers[name] = b
                b.copy_(saved)

    def restore_model(self) -> None:
        """θ, buffers and the base optimizer's state; ϕ and the counters stay."""
        with torch.no_grad():
            for p, saved in self.params or ():
                p.copy_(saved)
        self.restore_buffers()
        if self.base is not None:
            self.base.restore(groups=False)

    def restore(self) -> None:
        """Everything saved, as it was when the transaction began."""
        self.restore_model()
        if self.base is not None:
            self.base.restore_groups()
        with torch.no_grad():
            for p, saved, grad in self.meta or ():
                p.copy_(saved)
                p.grad = grad
        if self.meta_state is not None:
            self.meta_state.restore()
        if self.loss_inputs is not None:
            self.opt.loss.set_extra_state(self.loss_inputs)
        if self.trace is not None:
            self.trace[0].value = self.trace[1]
        for key, value in self.attrs.items():
            setattr(self.opt, key, value)
        if self.rng is not None:
            self.rng.rewind()

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            self.restore()
