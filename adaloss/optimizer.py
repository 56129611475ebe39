"""MetaLossOptimizer: AdaLFL as a drop-in replacement for ``backward(); step()``.

``opt.step(x, y, x_val, y_val)`` trains the model on a learned loss M_ϕ and, after
the base update, takes one meta step on ϕ to lower the task loss of the updated
model on the validation batch (paper Algorithm 2). ``opt.initialize(...)`` is the
offline ML3 phase that gives ϕ a sensible start (Algorithm 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from adaloss.guard import TrustRegionGuard
from adaloss.handing_over import HandsOver
from adaloss.handover import HandoverWatch, ValidationWindow
from adaloss.holdout import ContentSplit
from adaloss.hypergrad import Hypergradient, MetaStep, forward, unroll
from adaloss.modelcalls import is_compiled
from adaloss.objective import Objective, task_only
from adaloss.online import ENGINES, OnlineMetaOptimizer
from adaloss.patience import MetaPatience
from adaloss.recipes import LOSSES, Recipe, for_task, get_recipe, passed_settings, with_arguments
from adaloss.steplength import LearnedStepLength
from adaloss.steptrace import StepLengthTrace, check_saved_trace
from adaloss.tasks import Regression, Task
from adaloss.transaction import Transaction
from adaloss.warmstart import DEFAULT_RANGE, target_span, warm_start, widen


class MetaLossOptimizer(HandsOver, OnlineMetaOptimizer):
    """Train ``model`` on a learned loss M_ϕ that adapts after every step (AdaLFL).

    Args:
        model: any ``nn.Module``.
        base_optimizer: a ``torch.optim`` SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta,
            Adamax, RAdam or NAdam (``adaloss.inner.SUPPORTED``) over the model's
            parameters; it stays authoritative (schedulers, its state_dict).
        task: ``Classification(C)``, ``BinaryClassification()`` or ``Regression(n)``.
        loss: the learned loss, any module ``(pred, target) -> scalar`` on the task's
            mapped (B, C) tensors; default: the recipe's (``LossNetwork()``, see ``recipe``)
            on the model's device/dtype.
        recipe: ``"default"`` (task-loss warm start, η = 1e-3, the guard on, the momentum
            horizon, the hand-over judged on the validation batches; per task kind, unless
            the user sets one of them: on a ``Regression`` ``MonotoneLossNetwork`` with
            ``check_share=0.5``, on a classification ``learn_lr=True``; chosen on held-out
            data, BENCHMARKS.md), ``"unchecked"`` (the default without the hand-over: the
            default before session 20), ``"paper"`` (Algorithm 1's offline phase, η = 1e-5,
            no guard, L_T at θ_{t+1}: the paper's Appendix C), ``"step"`` (the unchecked
            default with L_T at θ_{t+1}) or an ``adaloss.recipes.Recipe``.
        meta_optimizer: default ``torch.optim.Adam(loss.parameters(), lr=meta_lr)``; one of
            your own turns the recipe's ``learn_lr`` off (it cannot hold the step length).
        meta_lr: online meta learning rate η; ``None`` takes the recipe's.
        guard: bound κ of the trust region ``adaloss.guard.TrustRegionGuard`` (the learned
            loss's output gradient at most κ× the task loss's, and descending it at least
            1/κ as fast); ``None`` takes the recipe's, ``False`` turns the guard off.
        hypergrad: ``"forward"`` (exact forward-mode engine, default) or ``"unroll"``
            (the reference: backprop through TorchOpt's differentiable update).
        meta_every: update ϕ on every k-th step only; the others are plain base steps.
        online: ``False`` keeps ϕ fixed after ``initialize()``: the ML3 baseline.
        jvp: ``"autograd"`` (forward-mode AD) or ``"finite_difference"`` (central
            difference, for models with operations that lack forward-mode rules).
        grad_scale: ``"auto"`` scales the step's backward passes dynamically when it runs
            under float16 autocast (``adaloss.precision``; overflowing steps are rejected,
            counted in ``skipped_steps``, and the scale halves), ``"dynamic"`` always,
            ``None`` never. bfloat16 needs no scaling.
        horizon: where the meta-objective measures the task loss: ``"step"`` at θ_{t+1}
            (the paper's), ``"momentum"`` at θ_t + U/(1−β), where the step's momentum β
            eventually carries θ (the default recipe's; the same as ``"step"`` without
            momentum), a number H ≥ 1 at θ_t + H·U for every parameter (a longer horizon
            whatever the optimizer); ``None`` takes the recipe's.
        patience: stop adapting ϕ once the meta-objective's moving average has not reached
            a new low for this many steps (``adaloss.patience``; ``stopped_at`` says when);
            ``None`` takes the recipe's (the default recipe's: none), ``False`` adapts to
            the end.
        after_stop: what trains θ once ``patience`` stopped ϕ: ``"task_loss"`` (plain
            training) or ``"frozen"`` (the learned loss as it was, under the guard);
            ``None`` takes the recipe's.
        handover: keep a twin of the model trained on the task loss alone (one plain step
            per step) and hand over to it once it has had the lower error at this many
            consecutive checks (``check_every``'s windows, ``check(x_check, y_check)``
            calls on held-out data, or both), or with ``"final"`` only if it has the lower
            error at ``finish(x_check, y_check)`` (``adaloss.handover``; ``handed_over_at``
            says when); ``None`` takes the recipe's (the default recipe's: 5), ``False``
            keeps no twin (one copy of the model and its optimizer state less, and a plain
            step less per step).
        check_every: with ``handover=P``, ``step`` checks by itself every this many steps,
            on the validation batches of those steps (both models in eval mode; steps
            without ``x_val, y_val`` add nothing, and a warning says so once); ``None``
            takes the recipe's (the default recipe's: 200), ``False`` checks only when
            ``check`` is called.
        check_share: with ``check_every``, keep this share of the validation examples —
            chosen by their content, so each example is always on the same side — from the
            meta-objective, and judge the windows on them alone (``adaloss.holdout``; a
            step whose batch has no example left for the meta-objective does not step ϕ);
            ``None`` takes the recipe's (see ``recipe``), ``False`` lets the checks see all.
        learn_lr: also learn the base step's length: every update of the base optimizer is
            multiplied by r = e^a, with a meta-learned beside ϕ by the meta-optimizer
            (``adaloss.steplength``; ``step_factor`` reads r). The optimizer's lr is never
            written, so a scheduler keeps working and r multiplies what it sets; after a
            hand-over (or a stop with ``after_stop="task_loss"``) steps are plain again.
            ``"longer"`` keeps r ≥ 1. ``None`` takes the recipe's (see ``recipe``).
        lr_horizon: with ``learn_lr``, a's hypergradient follows each step's length over
            about this many steps (dθ/da carried along the run, decayed by 1 − 1/K a step:
            ``adaloss.steptrace``; ``math.inf``: the whole run; the forward engine and
            ``meta_every=1`` only); ``None`` takes the recipe's, ``False``: this step's alone.
        keep_fit: project each meta-gradient off the directions that raise the task loss
            on the step's own training batch (``adaloss.keepfit``; ``"agree"``: drop it
            there instead); ``None``: the recipe's.
        step_length_meta_lr: with ``learn_lr``, Adam's rate for a = log r (ϕ keeps
            ``meta_lr``); ``None`` takes the recipe's (η for both), ``False`` η.
    """

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        task: Task,
        loss: nn.Module | None = None,
        meta_optimizer: torch.optim.Optimizer | None = None,
        meta_lr: float | None = None,
        hypergrad: str = "forward",
        meta_every: int = 1,
        online: bool = True,
        jvp: str = "autograd",
        recipe: str | Recipe = "default",
        guard: float | bool | None = None,
        grad_scale: str | None = "auto",
        horizon: str | float | None = None,
        patience: int | bool | None = None,
        after_stop: str | None = None,
        handover: int | str | bool | None = None,
        check_every: int | bool | None = None,
        check_share: float | bool | None = None,
        learn_lr: bool | str | None = None,
        lr_horizon: float | bool | None = None,
        keep_fit: bool | str | None = None,
        step_length_meta_lr: float | bool | None = None,
    ) -> None:
        passed = passed_settings(loss, check_share, learn_lr, meta_optimizer)
        self.recipe = with_arguments(
            for_task(get_recipe(recipe), task, passed),
            meta_lr=meta_lr,
            guard=guard,
            horizon=horizon,
            patience=patience,
            after_stop=after_stop,
            handover=handover,
            check_every=check_every,
            check_share=check_share,
            learn_lr=learn_lr,
            lr_horizon=lr_horizon,
            keep_fit=keep_fit,
            step_length_meta_lr=step_length_meta_lr,
        )
        self.patience = None if self.recipe.patience is None else MetaPatience(self.recipe.patience)
        self.guard = None if self.recipe.guard is None else TrustRegionGuard(self.recipe.guard)
        self.started = False  # whether the recipe's start (warm start / offline phase) ran
        self._guarded = torch.zeros((), dtype=torch.long)
        if hypergrad not in ENGINES:
            raise ValueError(f"hypergrad must be one of {ENGINES}, got {hypergrad!r}")
        if jvp not in forward.JVP_METHODS:
            raise ValueError(f"jvp must be one of {forward.JVP_METHODS}, got {jvp!r}")
        if hypergrad == "unroll" and isinstance(model, nn.Module) and is_compiled(model):
            raise ValueError(f"the model is compiled: {unroll.COMPILED_MODEL}")
        if loss is None:
            reference = next(iter(model.parameters()), None)
            loss = LOSSES[self.recipe.loss]()
            if reference is not None:
                loss = loss.to(device=reference.device, dtype=reference.dtype)
        self.loss = loss
        self.hypergrad = hypergrad
        self.jvp = jvp
        meta_params = [p for p in loss.parameters() if p.requires_grad]
        self.step_length = None
        if self.recipe.learn_lr:
            if meta_optimizer is not None:  # it cannot hold a, which does not exist yet
                raise ValueError("learn_lr needs the meta-optimizer MetaLossOptimizer builds")
            reference = next(model.parameters(), torch.empty(()))
            self.step_length = LearnedStepLength(reference, self.recipe.learn_lr == "longer")
        self.step_trace = None
        if self.recipe.lr_horizon not in (None, 1):
            if hypergrad != "forward" or meta_every != 1:
                raise ValueError("lr_horizon needs hypergrad='forward' and meta_every=1")
            self.step_trace = StepLengthTrace(self.recipe.lr_horizon)
        if self.recipe.start == "warm_start" and meta_params and not hasattr(loss, "pointwise"):
            raise TypeError(
                f"the {self.recipe.name!r} recipe warm-starts ϕ, which needs an elementwise "
                "learned loss with a pointwise(pred, target) method (LossNetwork, ML3Network, "
                f"TaylorLoss); {type(loss).__name__} has none: pass recipe='paper'"
            )
        if self.step_length is not None:  # a is stepped, saved and restored with ϕ, last
            rate = self.recipe.step_length_meta_lr
            meta_optimizer = self.step_length.meta_optimizer(meta_params, self.recipe.meta_lr, rate)
            meta_params = [*meta_params, self.step_length.log_factor]
        super().__init__(
            model,
            base_optimizer,
            task,
            meta_params,
            meta_optimizer,
            self.recipe.meta_lr,
            meta_every,
            online,
            grad_scale,
        )
        self._guarded = self._guarded.to(self.device)
        handover = self.recipe.handover
        self.handover_rule = None if handover is None else HandoverWatch(handover)
        self.twin = None if self.handover_rule is None else self._new_twin()
        every = self.recipe.check_every
        self.window = None if every is None else ValidationWindow(every)
        share = self.recipe.check_share
        self.split = None if share is None else ContentSplit(share)
        self.handed_over_at: int | None = None  # the step count at the hand-over
        if self.horizon == "momentum":
            self.update.momentum_horizons()  # a momentum of 1 or more fails here, not mid-run

    divergence_advice = (
        "the guard, on in the default recipe (guard=2), bounds what the learned loss does "
        "to the model"
    )

    @property
    def horizon(self) -> str | float:
        """Where the meta-objective measures L_T (``MetaStep.horizon``): the recipe's."""
        return self.recipe.horizon

    @property
    def step_factor(self) -> float:
        """r, the learned multiplier of the base step (``learn_lr``); 1.0 without it."""
        return 1.0 if self.step_length is None else self.step_length.factor

    def _meta_step(self, *args, **kwargs) -> MetaStep:
        step = super()._meta_step(*args, **kwargs)
        step.keep_fit = self.recipe.keep_fit
        if self.step_length is not None and not self._on_task_loss:
            step.meta_params = step.meta_params[:-1]  # ϕ; the engines append dL_T/da
            step.log_step = self.step_length.log_factor
            step.trace = self.step_trace
        return step

    def _committed(self, hg: Hypergradient) -> None:
        if self.step_trace is not None and hg.trace is not None:
            self.step_trace.value = hg.trace

    def _after_meta_step(self) -> None:
        if self.step_length is not None:
            self.step_length.project()

    def _plain_update(self, params, grads, tx: Transaction) -> None:
        if self.step_length is None or self._on_task_loss:
            return super()._plain_update(params, grads, tx)
        with self.step_length.scaled_lrs(self.base_optimizer):
            super()._plain_update(params, grads, tx)

    @property
    def guarded_steps(self) -> int:
        """Committed steps on which the guard acted (scaled M_ϕ down or mixed in L_T)."""
        return int(self._guarded)

    @property
    def stopped_at(self) -> int | None:
        """The step after which ϕ stopped adapting (``patience``); None while it adapts."""
        return None if self.patience is None else self.patience.stopped_at

    def _meta_step_due(self) -> bool:
        return self.stopped_at is None and self.handed_over_at is None and super()._meta_step_due()

    def _observe_meta_objective(self, task_loss: float) -> None:
        if self.patience is not None:
            self.patience.observe(self.steps, task_loss)

    @property
    def _on_task_loss(self) -> bool:
        """Whether steps train on L_T alone: handed over, or stopped with
        ``after_stop="task_loss"``."""
        if self.handed_over_at is not None:
            return True
        return self.stopped_at is not None and self.recipe.after_stop == "task_loss"

    def _objective(self, out: torch.Tensor, y: torch.Tensor, meta: bool) -> Objective:
        if self._on_task_loss:  # a plain step: the loss network is not even evaluated
            return task_only(self.task, out, y)
        return super()._objective(out, y, meta)

    def _objective_weights(self):
        if self.guard is None:
            return None
        guard, replicas = self.guard, self.replicas  # data-parallel: the whole batch's sums
        return lambda h, g: guard.weights(h, g, replicas)

    def _base_loss_module(self) -> nn.Module:
        return self.loss

    def _after_commit(self, objective: Objective | None) -> None:
        if self._on_task_loss:
            return  # s = 0, c = 1: the task loss, not the guard's doing
        if objective is not None and objective.loss_scale is not None:
            acted = (objective.loss_scale < 1) | (objective.task_weight > 0)
            self._guarded += acted.to(self._guarded.dtype)  # no device sync

    def _before_step(self, y: torch.Tensor, tx: Transaction) -> None:
        """With a warm-start recipe and no ``initialize()`` call, the first step warm-starts
        ϕ from its own batch's targets (undone, with everything else, if the step fails)."""
        if self.started or self.recipe.start != "warm_start" or not self.meta_params:
            return
        tx.save_meta()
        self._warm_start([y])

    def _warm_start(self, targets: list[torch.Tensor]) -> None:
        if any(p.requires_grad for p in self.loss.parameters()):  # else learn_lr's a alone
            value_range = DEFAULT_RANGE
            if isinstance(self.task, Regression):
                lo, hi = self.replicas.span(*target_span(targets))  # all ranks' targets
                if lo <= hi:
                    value_range = widen(lo, hi)
            with torch.autocast(self.device.type, enabled=False):  # the fit runs in ϕ's dtype
                self.warm_start_mismatch = warm_start(self.loss, self.task, value_range)
            self.replicas.broadcast_(self.meta_params)  # the fit is deterministic; make sure
        self.started = True

    def initialize(
        self,
        train_batches: Iterable | None = None,
        val_batches: Iterable | None = None,
        steps: int | None = None,
        meta_lr: float | None = None,
        inner_steps: int | None = None,
        progress: bool = False,
    ) -> list[float]:
        """Start ϕ as the recipe says, before the first step.

        ``warm_start`` recipes (the default) fit ϕ so that the learned loss's gradient
        matches the task loss's (``adaloss.warmstart``; regression reads the target range
        from up to 10 of ``train_batches``); they take no offline steps and return ``[]``.
        ``offline`` recipes (``"paper"``) run Algorithm 1 with the recipe's settings unless
        ``steps``, ``meta_lr`` or ``inner_steps`` are given, and return its validation
        task losses.
        """
        if not self.meta_params:
            raise ValueError("initialize() needs meta-parameters to learn; this one has none")
        if self.recipe.start == "warm_start":
            given = {"steps": steps, "meta_lr": meta_lr, "inner_steps": inner_steps}
            offline_only = sorted(k for k, v in given.items() if v is not None)
            if offline_only:
                raise ValueError(
                    f"{', '.join(offline_only)} set the offline phase of Algorithm 1, which the "
                    f"{self.recipe.name!r} recipe does not run (it warm-starts ϕ); pass "
                    "recipe='paper' to MetaLossOptimizer for the offline phase"
                )
            targets = []
            if train_batches is not None and isinstance(self.task, Regression):
                for x, y in train_batches:
                    self._check_local_batch(x, y, None, None)
                    targets.append(y)
                    if len(targets) == 10:
                        break
            self._warm_start(targets)
            return []
        losses = super().initialize(
            train_batches,
            val_batches,
            steps=self.recipe.offline_steps if steps is None else steps,
            meta_lr=self.recipe.offline_meta_lr if meta_lr is None else meta_lr,
            inner_steps=self.recipe.inner_steps if inner_steps is None else inner_steps,
            progress=progress,
        )
        self.started = True
        return losses

    def _extra_state(self) -> dict[str, Any]:
        extra = {"started": self.started, "guarded_steps": self.guarded_steps}
        if hasattr(self.loss, "normalize_inputs"):  # the warm start's (c, s), with ϕ
            extra["loss_inputs"] = self.loss.get_extra_state()
        if self.patience is not None:
            extra["patience"] = self.patience.state_dict()
        if self.step_trace is not None:
            extra["step_trace"] = self.step_trace.state_dict()
        if self.handover_rule is not None:
            extra["handover"] = self._handover_state()
        return extra

    def _check_state_dict(self, state_dict: dict[str, Any]) -> None:
        super()._check_state_dict(state_dict)
        if "loss_inputs" in state_dict and hasattr(self.loss, "normalize_inputs"):
            self.loss.check_extra_state(state_dict["loss_inputs"])
        if self.patience is not None and "patience" in state_dict:
            MetaPatience.check_state(state_dict["patience"])
        if self.step_trace is not None:
            check_saved_trace(state_dict.get("step_trace"), self.update.params())
        if self.handover_rule is not None:
            self._check_handover_state(state_dict.get("handover"))

    def _load_extra_state(self, state_dict: dict[str, Any]) -> None:
        # Checkpoints from before recipes: their ϕ was started (or trained) already.
        self.started = bool(state_dict.get("started", True))
        self._guarded.fill_(int(state_dict.get("guarded_steps", 0)))
        if hasattr(self.loss, "normalize_inputs"):  # older checkpoints: the identity
            identity = {"input_center": 0.0, "input_scale": 1.0}
            self.loss.set_extra_state(state_dict.get("loss_inputs", identity))
        if self.patience is not None:  # a checkpoint without it: the watch starts afresh
            self.patience = MetaPatience(self.patience.patience, self.patience.decay)
            if "patience" in state_dict:
                self.patience.load_state_dict(state_dict["patience"])
        if self.step_trace is not None:  # a checkpoint without it: nothing carried yet
            self.step_trace.load_state_dict(state_dict.get("step_trace", {}))
        if self.handover_rule is not None:
            self._load_handover_state(state_dict["handover"])

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
            f"meta_every={self.meta_every}, online={self.online}, {self.recipe.describe()})"
        )
