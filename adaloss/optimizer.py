"""MetaLossOptimizer: AdaLFL as a drop-in replacement for ``backward(); step()``.

``opt.step(x, y, x_val, y_val)`` trains the model on a learned loss M_ϕ and, after
the base update, takes one meta step on ϕ to lower the task loss of the updated
model on the validation batch (paper Algorithm 2). ``opt.initialize(...)`` is the
offline ML3 phase that gives ϕ a sensible start (Algorithm 1).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adaloss.hypergrad import Hypergradient, MetaStep, forward, grads_or_zeros, unroll
from adaloss.inner import HYPERPARAMETERS, STATE_KEYS, DifferentiableUpdate, check_group
from adaloss.losses import LossNetwork
from adaloss.modelcalls import RNGReplay, is_compiled, parameter_names
from adaloss.tasks import Task, check_finite
from adaloss.transaction import Transaction

ENGINES = ("forward", "unroll")
DIVERGENCE_FACTOR = 100.0  # warn when the meta-objective's average exceeds its best by this


@dataclass(frozen=True)
class StepResult:
    """What one ``step`` did. Losses are detached 0-dim tensors on the model's device."""

    learned_loss: torch.Tensor  # M_ϕ on the training batch at θ_t (the base loss)
    task_loss: torch.Tensor | None  # L_T on the validation batch at θ_{t+1}; None without meta step
    meta_updated: bool  # whether ϕ took a step
    skipped: bool = False  # rejected for non-finite values: nothing changed


def cycle(batches: Iterable) -> Iterator:
    """Repeat an iterable of batches forever; DataLoaders reshuffle every pass."""
    if iter(batches) is batches:  # a one-shot iterator: use it as it is
        for batch in batches:  # not `yield from`: closing us must not close the caller's
            yield batch
        raise ValueError("the batch iterator ran out during initialize(); pass a re-iterable")
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("initialize() got an empty iterable of batches")


def _all_finite(tensors) -> bool:
    sums = [t.detach().sum() for t in tensors if t.numel()]
    return not sums or bool(torch.isfinite(torch.stack(sums)).all())


def _all_finite_and_value(tensors, value: torch.Tensor) -> tuple[bool, float]:
    """``_all_finite(tensors)`` and ``float(value)`` for one device sync instead of two."""
    sums = [t.detach().sum() for t in tensors if t.numel()]
    if not sums:
        return True, float(value)
    finite = torch.isfinite(torch.stack(sums)).all().to(torch.float64)
    finite, value = torch.stack([finite, value.detach().reshape(()).to(torch.float64)]).tolist()
    return bool(finite), value


class OnlineMetaOptimizer(torch.optim.Optimizer):
    """Shared machinery of the online meta-learners (learned loss, learned learning rate).

    Behaves like an optimizer where that is natural (as schedule_free's wrappers
    do): it is a ``torch.optim.Optimizer`` whose ``param_groups``, ``defaults`` and
    ``state`` are the base optimizer's and whose ``zero_grad`` is forwarded, so
    learning-rate schedulers and checkpoint code work with either object. It does
    not call ``Optimizer.__init__`` (it owns no parameter groups of its own) but sets
    up what torch.optim's public API needs, so step / state_dict / load_state_dict
    hooks registered on the wrapper run around its own ``step`` and checkpoints.
    """

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        task: Task,
        meta_params: list[nn.Parameter],
        meta_optimizer: torch.optim.Optimizer | None,
        meta_lr: float,
        meta_every: int,
        online: bool,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(task, Task):
            raise TypeError(f"task must be an adaloss Task, got {type(task).__name__}")
        if not isinstance(meta_every, int) or meta_every < 1:
            raise ValueError(f"meta_every must be an integer >= 1, got {meta_every!r}")
        if meta_lr < 0:
            raise ValueError(f"meta_lr must be >= 0, got {meta_lr}")
        self.model = model
        self.base_optimizer = base_optimizer
        self.update = DifferentiableUpdate(base_optimizer)
        parameter_names(model, self.update.params())  # fails early for foreign tensors
        if not self.update.params():
            raise ValueError(
                "the base optimizer holds no trainable parameters (none with requires_grad=True): "
                "there is nothing to train"
            )
        self.task = task
        self.meta_params = meta_params
        if meta_optimizer is None and meta_params:
            meta_optimizer = torch.optim.Adam(meta_params, lr=meta_lr)
        self.meta_optimizer = meta_optimizer
        self.meta_every = meta_every
        self.online = online
        self.steps = 0
        self.skipped_steps = 0
        self._best_task_loss = float("inf")
        self._task_loss_ema: float | None = None
        self._divergence_warned = False
        self._init_optimizer_api()

    # -- optimizer look-alike -------------------------------------------------------------
    def _init_optimizer_api(self) -> None:
        """What ``Optimizer.__init__`` sets up for hooks and profiling, without param groups."""
        for hooks in (
            "_optimizer_step_pre_hooks",
            "_optimizer_step_post_hooks",
            "_optimizer_state_dict_pre_hooks",
            "_optimizer_state_dict_post_hooks",
            "_optimizer_load_state_dict_pre_hooks",
            "_optimizer_load_state_dict_post_hooks",
        ):
            if hooks not in self.__dict__:
                setattr(self, hooks, OrderedDict())
        self._patch_step_function()  # step pre/post hooks (torch's profile_hook_step)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()  # torch's keeps only defaults/state/param_groups

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_optimizer_api()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the base optimizer; removed again if adaloss cannot train it."""
        self.base_optimizer.add_param_group(param_group)
        try:
            check_group(f"param_groups[{len(self.param_groups) - 1}]", self.param_groups[-1])
            parameter_names(self.model, self.update.params())
        except BaseException:
            self.base_optimizer.param_groups.pop()
            raise

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base_optimizer.param_groups

    @property
    def state(self):
        return self.base_optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:
        return self.base_optimizer.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def device(self) -> torch.device:
        params = self.update.params()
        return params[0].device if params else torch.device("cpu")

    # -- checks ---------------------------------------------------------------------------
    def _check_batch(self, x, y, x_val, y_val) -> tuple[torch.Tensor, torch.Tensor]:
        if (x_val is None) != (y_val is None):
            raise ValueError("pass both x_val and y_val, or neither (meta-objective on x, y)")
        pairs = [("x", "y", x, y)]
        if x_val is not None:
            pairs.append(("x_val", "y_val", x_val, y_val))
        for xname, yname, xs, ys in pairs:
            if not isinstance(xs, torch.Tensor):
                raise ValueError(f"{xname} must be a torch.Tensor, got {type(xs).__name__}")
            if xs.dim() == 0 or xs.shape[0] == 0:
                raise ValueError(
                    f"{xname} must have a non-empty batch dimension; got {tuple(xs.shape)}"
                )
            self._check_placement(xname, xs, yname, ys)
            check_finite(xname, xs)
            try:
                self.task.check_targets(ys, xs.shape[0])
            except ValueError as err:
                raise ValueError(f"{yname}: {err}") from None
        return (x, y) if x_val is None else (x_val, y_val)

    def _check_placement(self, xname: str, xs: torch.Tensor, yname: str, ys: torch.Tensor):
        """A batch on another device, or a float batch of another dtype, than the model's."""
        params = self.update.params()
        devices = {p.device for p in params}
        dtypes = {p.dtype for p in params}
        model_devices = " / ".join(sorted(str(d) for d in devices))
        for name, t in ((xname, xs), (yname, ys)):
            if isinstance(t, torch.Tensor) and t.device not in devices:
                raise ValueError(
                    f"{name} is on {t.device} but the model's parameters are on {model_devices}; "
                    f"move the batch with {name}.to({str(next(iter(devices)))!r})"
                )
        if xs.is_floating_point() and xs.dtype not in dtypes:
            model_dtypes = " / ".join(sorted(str(d) for d in dtypes))
            raise ValueError(
                f"{xname} has dtype {xs.dtype} but the model's parameters are {model_dtypes}; "
                f"convert the batch with {xname}.to({model_dtypes.split(' / ')[0]}) or the model"
            )

    # -- the step -------------------------------------------------------------------------
    def _meta_step(self, x, y, x_val, y_val, rng: RNGReplay) -> MetaStep:
        params = self.update.params()
        return MetaStep(
            model=self.model,
            names=parameter_names(self.model, params),
            params=params,
            update=self.update,
            loss=self._base_loss_module(),
            meta_params=self.meta_params,
            task=self.task,
            x=x,
            y=y,
            x_val=x_val,
            y_val=y_val,
            rng=rng,
        )

    def _base_loss_module(self) -> nn.Module:
        raise NotImplementedError

    def _hypergradient(self, step: MetaStep, out: torch.Tensor) -> Hypergradient:
        raise NotImplementedError

    def _fall_back_to_unroll(self, err: Exception) -> None:
        raise err

    def _after_meta_step(self) -> None:
        """Hook: runs after ϕ changed (Meta-LR writes the learned rate into param_groups)."""

    def _forward(self, x: torch.Tensor, tx: Transaction):
        """Training forward: returns (output, RNG before it); ``tx`` saves the buffers first."""
        rng = RNGReplay(self.device)
        tx.save_rng(rng)
        tx.save_buffers()
        out = self.model(x)
        self.task.check_outputs(out, x.shape[0])
        return out, rng

    def _forward_and_hypergradient(
        self, x, y, x_val, y_val, tx: Transaction | None = None
    ) -> tuple[Hypergradient, Transaction]:
        """Training forward + hypergradient; the transaction holding the pre-step buffers.

        If the forward engine meets an operation without a forward-mode rule, the
        step is redone from the same RNG state and statistics with ``unroll``. An
        exception leaves everything as it was (``tx``'s owner restores; without one,
        this call does).
        """
        if tx is None:
            with Transaction(self) as tx:
                return self._forward_and_hypergradient(x, y, x_val, y_val, tx)
        out, rng = self._forward(x, tx)
        try:
            return self._hypergradient(self._meta_step(x, y, x_val, y_val, rng), out), tx
        except forward.ForwardModeUnsupported as err:
            self._fall_back_to_unroll(err)
            tx.restore_buffers()
            rng.rewind()
            out, rng = self._forward(x, tx)
            return self._hypergradient(self._meta_step(x, y, x_val, y_val, rng), out), tx

    def _watch_divergence(self, task_loss: float) -> None:
        """Warn once when the meta-objective's moving average rises 100-fold above its best.

        A learned loss can push the model away from the targets long before any value
        overflows (BENCHMARKS.md, Diabetes): a user should hear about it while it happens.
        The average over ~10 meta steps keeps one unlucky batch from raising the alarm.
        """
        ema = self._task_loss_ema
        ema = task_loss if ema is None else 0.9 * ema + 0.1 * task_loss
        self._task_loss_ema = ema
        self._best_task_loss = min(self._best_task_loss, ema)
        if not self._divergence_warned and ema > DIVERGENCE_FACTOR * self._best_task_loss:
            self._divergence_warned = True
            warnings.warn(
                f"adaloss: the task loss on the meta-objective batches averages {ema:.4g}, "
                f"over {DIVERGENCE_FACTOR:g}x its best average {self._best_task_loss:.4g}: "
                "training with the learned loss may be diverging (try a larger meta_lr "
                "or LossNetwork(anchored=True); see BENCHMARKS.md)",
                RuntimeWarning,
                stacklevel=5,  # the caller of step: _step, step, torch's hook wrapper
            )

    def _reject(self, tx: Transaction, what: str) -> StepResult:
        tx.restore_buffers()  # nothing else was written yet
        self.skipped_steps += 1
        warnings.warn(
            f"adaloss: step rejected, {what} is not finite; parameters, loss and optimizer "
            f"states are unchanged ({self.skipped_steps} skipped so far)",
            RuntimeWarning,
            stacklevel=5,
        )
        return StepResult(
            learned_loss=torch.tensor(float("nan")),
            task_loss=None,
            meta_updated=False,
            skipped=True,
        )

    @torch.no_grad()
    def _commit(
        self, params: list[nn.Parameter], new_params, new_state, meta_grads, tx: Transaction
    ) -> None:
        tx.save_params()
        tx.save_base_state(clone=False)  # commit replaces state tensors, never writes into them
        if meta_grads is not None and self.meta_params:
            tx.save_meta()
        for p, new in zip(params, new_params, strict=True):
            p.copy_(new)
        self.update.commit(new_state)
        if meta_grads is not None and self.meta_params:
            for phi, g in zip(self.meta_params, meta_grads, strict=True):
                phi.grad = g.detach()
            self.meta_optimizer.step()
            self.meta_optimizer.zero_grad(set_to_none=True)
            self._after_meta_step()

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_val: torch.Tensor | None = None,
        y_val: torch.Tensor | None = None,
    ) -> StepResult:
        """One base step on the learned objective, then (every ``meta_every`` steps) one meta step.

        Replaces ``loss.backward(); optimizer.step(); optimizer.zero_grad()``. Without
        ``x_val, y_val`` the meta-objective is measured on the training batch (the
        paper's "AdaLFL (Training)" variant). Bad input raises ``ValueError`` before
        anything changes; a non-finite loss or gradient rejects the whole step.
        """
        x_val, y_val = self._check_batch(x, y, x_val, y_val)
        with Transaction(self) as tx:  # any exception: everything as it was, RNG included
            return self._step(x, y, x_val, y_val, tx)

    def _step(self, x, y, x_val, y_val, tx: Transaction) -> StepResult:
        params = self.update.params()
        if self.online and self.steps % self.meta_every == 0:
            hg, _ = self._forward_and_hypergradient(x, y, x_val, y_val, tx)
            checks = (
                ("the learned loss", [hg.learned_loss]),
                ("the base gradient", hg.base_grads),
                ("the updated parameters", hg.new_params),
                ("the meta-gradient", hg.meta_grads),
            )
            # One device sync (checks and the task loss for the divergence watch) in the
            # common case; name the culprit only on failure.
            finite, task_loss = _all_finite_and_value(
                [t for _, tensors in checks for t in tensors], hg.task_loss
            )
            if not finite:
                what = next(what for what, tensors in checks if not _all_finite(tensors))
                return self._reject(tx, what)
            self._commit(params, hg.new_params, hg.new_state, hg.meta_grads, tx)
            result = StepResult(hg.learned_loss, hg.task_loss, meta_updated=bool(self.meta_params))
            self._watch_divergence(task_loss)
        else:
            out, _ = self._forward(x, tx)
            learned = self._base_loss_module()(*self._loss_inputs(out, y))
            grads = grads_or_zeros(torch.autograd.grad(learned, params, allow_unused=True), params)
            if not _all_finite([learned]):
                return self._reject(tx, "the learned loss")
            if not _all_finite(grads):
                return self._reject(tx, "the base gradient")
            self._plain_update(params, grads, tx)
            result = StepResult(learned.detach(), None, meta_updated=False)
        self.steps += 1
        return result

    def _loss_inputs(self, out, y):
        return self.task.learned_loss_inputs(out, y)

    def _plain_update(self, params, grads, tx: Transaction) -> None:
        """A step of the base optimizer itself (torch's own kernels) with the given gradients."""
        tx.save_params()  # torch's kernels write θ and the state in place
        tx.save_base_state(clone=True)
        saved = [p.grad for p in params]
        try:
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            self.base_optimizer.step()
        finally:
            for p, g in zip(params, saved, strict=True):
                p.grad = g

    def meta_gradient(self, x, y, x_val=None, y_val=None) -> tuple[torch.Tensor, ...]:
        """dL_T/dϕ for one step from the current state, without changing anything."""
        x_val, y_val = self._check_batch(x, y, x_val, y_val)
        hg, tx = self._forward_and_hypergradient(x, y, x_val, y_val)
        tx.restore_buffers()
        return hg.meta_grads

    # -- offline initialization ----------------------------------------------------------
    def initialize(
        self,
        train_batches: Iterable,
        val_batches: Iterable | None = None,
        steps: int = 2500,
        meta_lr: float = 1e-3,
        inner_steps: int = 1,
        progress: bool = False,
    ) -> list[float]:
        """Offline meta-learning of ϕ from the initial model (ML3; paper Algorithm 1).

        Each of ``steps`` outer iterations resets θ to θ_0 with fresh optimizer state,
        takes ``inner_steps`` differentiable base steps on training batches, measures
        L_T on a validation batch and steps ϕ with a fresh Adam at ``meta_lr``. The
        model and optimizer state end as they started. Returns the validation task
        loss of every outer iteration.
        """
        if not self.meta_params:
            raise ValueError("initialize() needs meta-parameters to learn; this one has none")
        if steps < 0 or inner_steps < 1:
            raise ValueError(f"need steps >= 0 and inner_steps >= 1; got {steps}, {inner_steps}")
        from adaloss.offline import run_initialization

        return run_initialization(
            self, train_batches, val_batches, steps, meta_lr, inner_steps, progress
        )

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        state_dict = {
            "base_optimizer": self.base_optimizer.state_dict(),
            "meta_params": [p.detach().clone() for p in self.meta_params],
            "meta_optimizer": self.meta_optimizer.state_dict() if self.meta_optimizer else None,
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
        }
        for hook in self._optimizer_state_dict_post_hooks.values():
            state_dict = hook(self, state_dict) or state_dict
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a checkpoint whole or not at all: everything is checked before anything changes.

        A mismatch (another model's shapes, another optimizer type, a missing entry)
        raises ``ValueError`` naming the first one found.
        """
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            state_dict = hook(self, state_dict) or state_dict
        self._check_state_dict(state_dict)
        base, meta = self.base_optimizer, self.meta_optimizer
        # torch's load_state_dict replaces its state and param_groups objects: keep the old ones.
        saved_base = (base.state, base.param_groups)
        saved_meta = (meta.state, meta.param_groups) if meta is not None else None
        with Transaction(self) as tx:
            tx.save_meta()
            try:
                base.load_state_dict(state_dict["base_optimizer"])
                with torch.no_grad():
                    for p, s in zip(self.meta_params, state_dict["meta_params"], strict=True):
                        p.copy_(s)
                if meta is not None:
                    meta.load_state_dict(state_dict["meta_optimizer"])
                self.steps = state_dict["steps"]
                self.skipped_steps = state_dict["skipped_steps"]
                self._after_meta_step()
            except BaseException:
                base.state, base.param_groups = saved_base
                if meta is not None:
                    meta.state, meta.param_groups = saved_meta
                raise
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    def _check_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raise ValueError at the first part of ``state_dict`` that does not fit this wrapper."""
        keys = ("base_optimizer", "meta_params", "meta_optimizer", "steps", "skipped_steps")
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"state_dict lacks {missing[0]!r} (an adaloss checkpoint has {keys})")
        kind = type(self.base_optimizer)
        _check_optimizer_state(
            "base_optimizer",
            self.base_optimizer,
            state_dict["base_optimizer"],
            HYPERPARAMETERS.get(kind, ()),
            STATE_KEYS.get(kind),
        )
        for i, group in enumerate(state_dict["base_optimizer"]["param_groups"]):
            try:
                check_group(f"param_groups[{i}]", {**group, "params": []})
            except TypeError as err:
                raise ValueError(f"state_dict['base_optimizer']: {err}") from None
        saved = state_dict["meta_params"]
        expected = [tuple(p.shape) for p in self.meta_params]
        got = [tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__ for s in saved]
        if got != expected:
            raise ValueError(
                f"state_dict's meta-parameters do not match: expected shapes {expected}, got {got}"
            )
        if (self.meta_optimizer is None) != (state_dict["meta_optimizer"] is None):
            has = "has" if state_dict["meta_optimizer"] is not None else "has no"
            raise ValueError(
                f"state_dict {has} meta-optimizer state but this wrapper "
                f"{'has no meta optimizer' if self.meta_optimizer is None else 'has one'}"
            )
        if self.meta_optimizer is not None:
            _check_optimizer_state(
                "meta_optimizer", self.meta_optimizer, state_dict["meta_optimizer"], (), None
            )
        for counter in ("steps", "skipped_steps"):
            value = state_dict[counter]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"state_dict[{counter!r}] must be an integer >= 0, got {value!r}")


def _check_optimizer_state(
    what: str,
    optimizer: torch.optim.Optimizer,
    saved: Any,
    options: tuple[str, ...],
    state_keys: tuple[str, ...] | None,
) -> None:
    """Raise ValueError unless torch's ``optimizer.load_state_dict(saved)`` fits ``optimizer``.

    torch checks only the number of groups and of parameters per group; this also checks
    the options the update reads (``options``), the state's keys and every state tensor's
    shape against its parameter, so a checkpoint of a wider model or of another
    optimizer type is refused before anything is loaded.
    """
    where = f"state_dict[{what!r}]"
    if not isinstance(saved, dict) or not {"state", "param_groups"} <= saved.keys():
        raise ValueError(f"{where} is not an optimizer state_dict (needs 'state', 'param_groups')")
    groups, saved_groups = optimizer.param_groups, saved["param_groups"]
    if len(groups) != len(saved_groups):
        raise ValueError(
            f"{where} has {len(saved_groups)} parameter group(s); this optimizer has {len(groups)}"
        )
    by_index: dict[Any, torch.Tensor] = {}
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups, strict=True)):
        if len(group["params"]) != len(saved_group["params"]):
            raise ValueError(
                f"{where}: param_groups[{i}] has {len(saved_group['params'])} parameter(s); "
                f"this optimizer's has {len(group['params'])}"
            )
        for option in options:
            if option not in saved_group:
                raise ValueError(
                    f"{where}: param_groups[{i}] lacks {option!r}, which "
                    f"{type(optimizer).__name__} needs (a checkpoint of another optimizer type?)"
                )
        flag = "decoupled_weight_decay"
        mine, theirs = group.get(flag), saved_group.get(flag)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(
                f"{where}: param_groups[{i}] has decoupled_weight_decay={theirs}, this "
                f"optimizer {mine} (Adam and AdamW checkpoints do not mix)"
            )
        by_index.update(zip(saved_group["params"], group["params"], strict=True))
    for index, entry in saved["state"].items():
        if index not in by_index:
            raise ValueError(f"{where} has state for parameter {index!r}, which no group holds")
        p = by_index[index]
        for key, value in entry.items():
            if state_keys is not None and key not in state_keys:
                raise ValueError(
                    f"{where}: state of parameter {index} has {key!r}; "
                    f"{type(optimizer).__name__} keeps {state_keys} (another optimizer type?)"
                )
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or key == "step":
                continue
            if value.shape != p.shape:
                raise ValueError(
                    f"{where}: state {key!r} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter {tuple(p.shape)} (another model?)"
                )


class MetaLossOptimizer(OnlineMetaOptimizer):
    """Train ``model`` on a learned loss M_ϕ that adapts after every step (AdaLFL).

    Args:
        model: any ``nn.Module``.
        base_optimizer: ``torch.optim.SGD``, ``Adam`` or ``AdamW`` over the model's
            parameters; it stays authoritative (schedulers, its state_dict).
        task: ``Classification(C)``, ``BinaryClassification()`` or ``Regression(n)``.
        loss: the learned loss, any module ``(pred, target) -> scalar`` on the task's
            mapped (B, C) tensors; default ``LossNetwork()`` on the model's device/dtype.
        meta_optimizer: default ``torch.optim.Adam(loss.parameters(), lr=meta_lr)``.
        meta_lr: online meta learning rate η (paper: 1e-5).
        hypergrad: ``"forward"`` (exact forward-mode engine, default) or ``"unroll"``
            (the reference: backprop through TorchOpt's differentiable update).
        meta_every: update ϕ on every k-th step only; the others are plain base steps.
        online: ``False`` keeps ϕ fixed after ``initialize()``: the ML3 baseline.
        jvp: ``"autograd"`` (forward-mode AD) or ``"finite_difference"`` (central
            difference, for models with operations that lack forward-mode rules).
    """

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        task: Task,
        loss: nn.Module | None = None,
        meta_optimizer: torch.optim.Optimizer | None = None,
        meta_lr: float = 1e-5,
        hypergrad: str = "forward",
        meta_every: int = 1,
        online: bool = True,
        jvp: str = "autograd",
    ) -> None:
        if hypergrad not in ENGINES:
            raise ValueError(f"hypergrad must be one of {ENGINES}, got {hypergrad!r}")
        if jvp not in forward.JVP_METHODS:
            raise ValueError(f"jvp must be one of {forward.JVP_METHODS}, got {jvp!r}")
        if hypergrad == "unroll" and isinstance(model, nn.Module) and is_compiled(model):
            raise ValueError(f"the model is compiled: {unroll.COMPILED_MODEL}")
        if loss is None:
            reference = next(iter(model.parameters()), None)
            loss = LossNetwork()
            if reference is not None:
                loss = loss.to(device=reference.device, dtype=reference.dtype)
        self.loss = loss
        self.hypergrad = hypergrad
        self.jvp = jvp
        meta_params = [p for p in loss.parameters() if p.requires_grad]
        super().__init__(
            model, base_optimizer, task, meta_params, meta_optimizer, meta_lr, meta_every, online
        )

    def _base_loss_module(self) -> nn.Module:
        return self.loss

    def _fall_back_to_unroll(self, err: Exception) -> None:
        if is_compiled(self.model):
            raise ValueError(
                f"the compiled model has an operation without a forward-mode rule ({err}), "
                f"and {unroll.COMPILED_MODEL}; pass jvp='finite_difference' instead"
            ) from err
        warnings.warn(
            f"adaloss: the model has an operation without a forward-mode rule ({err}); "
            "switching this optimizer to hypergrad='unroll' (exact, slower). Pass "
            "jvp='finite_difference' to keep the forward engine with a numerical JVP.",
            RuntimeWarning,
            stacklevel=6,
        )
        self.hypergrad = "unroll"

    def _hypergradient(self, step: MetaStep, out: torch.Tensor) -> Hypergradient:
        if self.hypergrad == "unroll":
            return unroll.hypergradient(step, out)
        return forward.hypergradient(step, out, self.jvp)

    def __repr__(self) -> str:
        return (
            f"MetaLossOptimizer(base={type(self.base_optimizer).__name__}, task={self.task!r}, "
            f"loss={type(self.loss).__name__}, hypergrad={self.hypergrad!r}, "
            f"meta_every={self.meta_every}, online={self.online})"
        )
