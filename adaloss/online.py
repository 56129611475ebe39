"""The online meta-learner's machinery: the optimizer look-alike and the atomic step.

``OnlineMetaOptimizer`` is what MetaLossOptimizer (a learned loss, paper Algorithm 2) and
MetaLROptimizer (a learned learning rate, Algorithm 4) share: torch.optim's public API
forwarded to the base optimizer, input checks, one step that either commits θ_{t+1}, the
optimizer states and the meta step together or changes nothing; checkpoints come from
``adaloss.checkpointing``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from adaloss.batches import all_finite as _all_finite
from adaloss.batches import all_finite_and_value as _all_finite_and_value
from adaloss.batches import check_batch
from adaloss.checkpointing import Checkpointing
from adaloss.distributed import unwrap
from adaloss.divergence import DivergenceWatch
from adaloss.hypergrad import Hypergradient, MetaStep, base_gradient, forward
from adaloss.inner import DifferentiableUpdate
from adaloss.lookalike import OptimizerLookAlike
from adaloss.modelcalls import RNGReplay, parameter_names
from adaloss.objective import Objective, evaluate
from adaloss.offline import Learner, run_initialization
from adaloss.precision import LossScaling
from adaloss.tasks import Task
from adaloss.transaction import Transaction

ENGINES = ("forward", "unroll")
OVERFLOWS = ("the base gradient", "the meta-gradient")  # what a too-large grad scale breaks


@dataclass(frozen=True)
class StepResult:
    """What one ``step`` did. Losses are detached 0-dim tensors on the model's device."""

    learned_loss: torch.Tensor  # M_ϕ on the training batch at θ_t (the base loss)
    task_loss: torch.Tensor | None  # L_T on the validation batch at θ_{t+1}; None without meta step
    meta_updated: bool  # whether ϕ took a step
    skipped: bool = False  # rejected for non-finite values: nothing changed
    loss_scale: torch.Tensor | None = None  # the guard's s on M_ϕ (1: not clipped); None: off
    task_weight: torch.Tensor | None = None  # the guard's c on L_T (0: not needed); None: off


class OnlineMetaOptimizer(Checkpointing, OptimizerLookAlike):
    """Shared machinery of the online meta-learners (learned loss, learned learning rate).

    Behaves like an optimizer where that is natural (as schedule_free's wrappers
    do): it is a ``torch.optim.Optimizer`` whose ``param_groups``, ``defaults`` and
    ``state`` are the base optimizer's and whose ``zero_grad`` is forwarded, so
    learning-rate schedulers and checkpoint code work with either object. It does
    not call ``Optimizer.__init__`` (it owns no parameter groups of its own) but sets
    up what torch.optim's public API needs, so step / state_dict / load_state_dict
    hooks registered on the wrapper run around its own ``step`` and checkpoints.
    """

    horizon = "step"  # where the meta-objective is measured: ``MetaStep.horizon``
    divergence_advice = "a smaller meta_lr adapts more slowly"  # the divergence warning's

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
        grad_scale: str | None = "auto",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.scaling = LossScaling(grad_scale)  # float16: see adaloss.precision
        self._grad_scale = self._val_weight = 1.0  # the step in progress's S, and L_T's weight
        model, self.replicas = unwrap(model)  # a DDP model: its module and its ranks
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
        self.divergence = DivergenceWatch(self.divergence_advice)
        self._init_optimizer_api()
        self.replicas.broadcast_(meta_params)  # ϕ starts as rank 0's, as DDP does for θ

    @property
    def device(self) -> torch.device:
        params = self.update.params()
        return params[0].device if params else torch.device("cpu")

    # -- checks ---------------------------------------------------------------------------
    def _check_batch(self, x, y, x_val, y_val) -> tuple[torch.Tensor, torch.Tensor]:
        """``check_batch`` on every rank (one rank's bad batch raises on all); the meta batch."""
        return self.replicas.check_everywhere(self._check_local_batch, x, y, x_val, y_val)

    def _check_local_batch(self, x, y, x_val, y_val) -> tuple[torch.Tensor, torch.Tensor]:
        return check_batch(self.task, self.update.params(), x, y, x_val, y_val)

    # -- the step -------------------------------------------------------------------------
    def _meta_step(
        self, x, y, x_val, y_val, rng: RNGReplay, objective: Objective | None = None
    ) -> MetaStep:
        params = self.update.params()
        return MetaStep(
            model=self.model,
            names=parameter_names(self.model, params),
            params=params,
            update=self.update,
            loss=self._base_loss_module(),
            objective=objective,  # its weights s, c become the step's
            meta_params=self.meta_params,
            task=self.task,
            grad_scale=self._grad_scale,
            x=x,
            y=y,
            x_val=x_val,
            y_val=y_val,
            rng=rng,
            replicas=self.replicas,
            horizon=self.horizon,
            val_weight=self._val_weight,
        )

    def _base_loss_module(self) -> nn.Module:
        raise NotImplementedError

    def _hypergradient(self, step: MetaStep, out: torch.Tensor) -> Hypergradient:
        raise NotImplementedError

    def _fall_back_to_unroll(self, err: Exception) -> None:
        raise err

    def _committed(self, hg: Hypergradient) -> None:
        """Hook: a meta step's hypergradient was committed (``lr_horizon`` keeps its trace)."""

    def _after_meta_step(self) -> None:
        """Hook: runs after ϕ changed (Meta-LR writes the learned rate into param_groups)."""

    def _objective_weights(self):
        """Hook: ``weights(h, g) -> (s, c)`` of the base objective (the guard's), or None."""
        return None

    def _forward(self, x: torch.Tensor, y: torch.Tensor, tx: Transaction, meta: bool):
        """Training forward: (output, RNG before it, base objective at the output); ``tx``
        saves the buffers first. ``meta``: keep h differentiable in ϕ for a meta step."""
        rng = RNGReplay(self.device)
        tx.save_rng(rng)
        tx.save_buffers()
        self.replicas.sync_buffers_(self.model)  # rank 0's running statistics, as DDP's forward
        out = self.model(x)
        self.task.check_outputs(out, x.shape[0])
        return out, rng, self._objective(out, y, meta)

    def _objective(self, out: torch.Tensor, y: torch.Tensor, meta: bool) -> Objective:
        """The base objective at the outputs (MetaLossOptimizer: L_T alone once stopped)."""
        loss, weights = self._base_loss_module(), self._objective_weights()
        return evaluate(loss, self.task, out, y, self._loss_inputs, weights, meta)

    def _forward_and_hypergradient(
        self, x, y, x_val, y_val, tx: Transaction | None = None
    ) -> tuple[Hypergradient, Transaction]:
        """Training forward + hypergradient; the transaction holding the pre-step buffers.
        If the forward engine meets an operation without a forward-mode rule, the step is
        redone from the same RNG state and statistics with ``unroll``. An exception leaves
        everything as it was (``tx``'s owner restores; without one, this call does)."""
        if tx is None:
            with Transaction(self) as tx:
                return self._forward_and_hypergradient(x, y, x_val, y_val, tx)
        out, rng, objective = self._forward(x, y, tx, meta=True)
        try:
            hg = self._hypergradient(self._meta_step(x, y, x_val, y_val, rng, objective), out)
        except forward.ForwardModeUnsupported as err:
            self._fall_back_to_unroll(err)
            tx.restore_buffers()
            rng.rewind()
            out, rng, objective = self._forward(x, y, tx, meta=True)
            hg = self._hypergradient(self._meta_step(x, y, x_val, y_val, rng, objective), out)
        hg.objective = objective
        return hg, tx

    def _observe_meta_objective(self, task_loss: float) -> None:
        """Hook: a committed meta step's meta-objective (MetaLossOptimizer's early stop)."""

    def _reject(self, tx: Transaction, what: str) -> StepResult:
        tx.restore_buffers()  # nothing else was written yet
        self.skipped_steps += 1
        scaled = self.scaling.rejected(self._grad_scale, overflow=what in OVERFLOWS)
        told = str(self.skipped_steps).rstrip("0") == "1"  # at 1, 10, 100…: not once per step
        if not scaled and told:
            warnings.warn(
                f"adaloss: step rejected, {what} is not finite; parameters, loss and optimizer "
                f"states are unchanged ({self.skipped_steps} skipped so far; told again at "
                f"{10 * self.skipped_steps}, all counted in skipped_steps)",
                RuntimeWarning,
                stacklevel=5,
            )
        nan = torch.tensor(float("nan"))
        return StepResult(learned_loss=nan, task_loss=None, meta_updated=False, skipped=True)

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
        meta, check = self._share_validation(self._check_batch(x, y, x_val, y_val), x_val, y_val)
        with Transaction(self) as tx:  # any exception: everything as it was, RNG included
            self._before_step(y, tx)
            result = self._step(x, y, *meta, tx)
            self._after_step(x, y, *check, result)
            return result

    def _share_validation(self, meta, x_val, y_val):
        """Hook: the meta-objective's batch (``(None, None)``: no meta step this time) and the
        hand-over's checks' (``(x_val, y_val)`` here: both get every example)."""
        return meta, (x_val, y_val)

    def _before_step(self, y: torch.Tensor, tx: Transaction) -> None:
        """Hook: runs inside the step's transaction first (MetaLossOptimizer's lazy start)."""

    def _after_step(self, x, y, x_val, y_val, result: StepResult) -> None:
        """Hook: runs inside the transaction last (MetaLossOptimizer's plain-trained twin)."""

    def _step(self, x, y, x_val, y_val, tx: Transaction) -> StepResult:
        # One device sync per step (besides the input check's): the finiteness of all the step would
        # write, with the task loss for the watches. A rejection must change no host state
        # (counters, the warning, the watches), which a device-side flag read later could not undo.
        params = self.update.params()
        self._grad_scale = self.scaling.scale_for(self.device)
        if x_val is not None and self._meta_step_due():
            hg, _ = self._forward_and_hypergradient(x, y, x_val, y_val, tx)
            objective = hg.objective
            checks = (
                ("the learned loss", [hg.learned_loss]),
                ("the base gradient", hg.base_grads),
                ("the updated parameters", hg.new_params),
                ("the meta-gradient", hg.meta_grads),
            )
            finite, task_loss = _all_finite_and_value(
                [t for _, tensors in checks for t in tensors], hg.task_loss
            )
            if not finite:
                what = next(what for what, tensors in checks if not _all_finite(tensors))
                return self._reject(tx, what)
            self._commit(params, hg.new_params, hg.new_state, hg.meta_grads, tx)
            self._committed(hg)
            learned, task_loss_tensor, meta_updated = hg.learned_loss, hg.task_loss, True
            self.divergence.observe(task_loss, stacklevel=4)  # _step, step, torch's hook wrapper
            self._observe_meta_objective(task_loss)
        else:
            out, _, objective = self._forward(x, y, tx, meta=False)
            learned, grads = base_gradient(objective, out, params, self._grad_scale, self.replicas)
            task_loss_tensor, meta_updated = None, False
            checks = (("the learned loss", [learned]), ("the base gradient", grads))
            if not _all_finite([learned, *grads]):
                what = next(what for what, tensors in checks if not _all_finite(tensors))
                return self._reject(tx, what)
            self._plain_update(params, grads, tx)
        self._after_commit(objective)
        self.steps += 1
        self.scaling.committed(self._grad_scale)
        return StepResult(
            learned,
            task_loss_tensor,
            meta_updated=meta_updated and bool(self.meta_params),
            loss_scale=objective.loss_scale,
            task_weight=objective.task_weight,
        )

    def _after_commit(self, objective: Objective | None) -> None:
        """Hook: bookkeeping of a committed step (the guard's count, on the device)."""

    def _meta_step_due(self) -> bool:
        """Whether this step also steps ϕ (MetaLossOptimizer adds its early stop)."""
        return self.online and self.steps % self.meta_every == 0

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
        meta, _ = self._share_validation(self._check_batch(x, y, x_val, y_val), x_val, y_val)
        if meta[0] is None:
            raise ValueError("check_share keeps every example of x_val: none is left for ϕ")
        hg, tx = self._forward_and_hypergradient(x, y, *meta)
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
        learner = self._offline_learner()
        return run_initialization(
            learner, train_batches, val_batches, steps, meta_lr, inner_steps, progress
        )

    def _offline_learner(self) -> Learner:
        """What ``adaloss.offline`` may use of this optimizer: state and bound methods."""
        return Learner(
            model=self.model,
            params=self.update.params(),
            base_state=self.base_optimizer.state,
            meta_params=self.meta_params,
            task=self.task,
            device=self.device,
            check_batch=self._check_batch,
            meta_step=self._meta_step,
            hypergradient=self._forward_and_hypergradient,
            after_meta_step=self._after_meta_step,
            transaction=lambda: Transaction(self),
        )
