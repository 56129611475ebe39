"""Hand-over to plain training: a twin trained on the task loss, compared on held-out data.

Why: a learned loss is fitted to its validation batches, so they cannot tell whether it
still helps; on small data sets it can end worse than plain training on every seed
(BENCHMARKS.md, Diabetes) while elsewhere its gain comes late (crime with corrupted
targets), and the meta-objective looks the same on both. A counterfactual can tell them
apart: a copy of the model that trains on the task loss from the same θ_0 with the same
batches (one plain step per step), and a *check* set the meta-objective never sees. When
the learned loss's model has had the higher check error at ``patience`` consecutive checks,
the optimizer hands over: θ, the buffers and the base optimizer's state become the twin's,
and every later step is a plain step — from there on the run *is* plain training.

The checks are the user's ``check`` calls, or, with ``check_every``, ``step``'s own: both
models' errors on the validation batches of the last ``check_every`` steps. Those batches
favour the learned loss (ϕ is fitted to them), so this check misses harm small enough to
hide there; the gross harm measured on data outside the benchmark rows did not hide
(BENCHMARKS.md, "The quick start on data outside the benchmark rows").
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adaloss.batches import all_finite
from adaloss.checkpoint import check_optimizer_state
from adaloss.distributed import Replicas
from adaloss.hypergrad import scaled_grad
from adaloss.inner import HYPERPARAMETERS, STATE_KEYS
from adaloss.tasks import Task
from adaloss.transaction import OptimizerState

FINAL = "final"  # ``handover="final"``: only ``finish`` decides, keeping the better model


def check_check_every(every, patience) -> None:
    """Refuse a ``check_every`` that is not None or an int >= 1, or one without a number of
    checks (``patience``) to count its windows toward."""
    if every is None:
        return
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(
            f"check_every must be None or an integer number of steps >= 1, got {every!r}"
        )
    if patience is None or patience == FINAL:
        raise ValueError(
            f"check_every counts checks toward a hand-over: pass handover=P (a number of "
            f"checks), not {patience!r}"
        )


def check_handover(patience) -> None:
    """Refuse a hand-over rule that is neither None, "final" nor a number of checks >= 1."""
    if (
        patience is not None
        and patience != FINAL
        and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1)
    ):
        raise ValueError(
            f'handover must be None, "final" or an integer number of checks >= 1, got {patience!r}'
        )


@dataclass(frozen=True)
class CheckResult:
    """What one ``check`` measured: ``task.error`` on the check batch, detached 0-dim tensors."""

    model_error: torch.Tensor  # the model's (the learned loss's, until the hand-over)
    twin_error: torch.Tensor | None  # the plain-trained twin's; None once handed over
    handed_over: bool  # whether the model is now the twin (from this check or an earlier one)


class HandoverWatch:
    """Counts consecutive checks at which the learned loss's model did worse than the twin;
    with ``patience="final"`` it only counts, and the final pick alone decides."""

    def __init__(self, patience: int | str) -> None:
        if patience is None:
            raise ValueError("handover must be an integer number of checks >= 1, got None")
        check_handover(patience)
        self.patience = patience
        self.behind = 0  # consecutive checks with the model's error above the twin's

    def observe(self, model_error: float, twin_error: float) -> bool:
        """Record one check; True when it is time to hand over. A tie resets the count; a
        non-finite model error counts as behind."""
        self.behind = self.behind + 1 if self.pick(model_error, twin_error) else 0
        return self.patience != FINAL and self.behind >= self.patience

    @staticmethod
    def pick(model_error: float, twin_error: float) -> bool:
        """The final pick: whether the twin's model is the better one (ties keep the model)."""
        return not model_error <= twin_error

    def state_dict(self) -> dict[str, Any]:
        return {"behind": self.behind}

    @staticmethod
    def check_state(state: Any) -> None:
        if not isinstance(state, dict) or "behind" not in state:
            raise ValueError("the hand-over watch's state must be a dict with 'behind'")
        behind = state["behind"]
        if isinstance(behind, bool) or not isinstance(behind, int) or behind < 0:
            raise ValueError(f"the hand-over watch's 'behind' must be an int >= 0, got {behind!r}")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_state(state)
        self.behind = state["behind"]


class ValidationWindow:
    """``step``'s own check (``check_every``): both models' errors on each step's validation
    batch, weighted by batch size and summed on the device (one host read per window); the
    counts stay on the host. A window closes after ``every`` batches."""

    EMPTY = {"sums": [0.0, 0.0], "examples": 0, "batches": 0}

    def __init__(self, every: int) -> None:
        self.every = every
        self.sums = torch.zeros(2, dtype=torch.float64)  # the model's, the twin's error sums
        self.examples = self.batches = 0

    def add(self, model: nn.Module, twin: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor):
        """Add one step's batch; one with no rows (``check_share`` kept none) only counts."""
        self.batches += 1
        if x.shape[0] == 0:
            return
        errors = torch.stack([check_error(m, task, x, y).double() for m in (model, twin)])
        self.sums = self.sums.to(errors.device) + errors * x.shape[0]
        self.examples += x.shape[0]

    def due(self) -> bool:
        return self.batches >= self.every

    def take(self, replicas: Replicas) -> tuple[float, float]:
        """The window's mean errors (the model's, the twin's) over every rank; then it empties."""
        examples = self.sums.new_tensor([float(self.examples)])
        (sums,) = replicas.sum([torch.cat([self.sums, examples])])
        self.sums, self.examples, self.batches = torch.zeros_like(self.sums), 0, 0
        model, twin, n = sums.tolist()
        return model / max(n, 1.0), twin / max(n, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self.sums.tolist(), "examples": self.examples, "batches": self.batches}

    @staticmethod
    def check_state(state: Any) -> None:
        def count(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 0

        sums = state.get("sums") if isinstance(state, dict) else None
        if (
            not isinstance(sums, list)
            or len(sums) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in sums)
            or not (count(state.get("examples")) and count(state.get("batches")))
        ):
            raise ValueError(
                "the check window's state must be a dict with 2 numbers in 'sums' and counts "
                "'examples', 'batches' (ints >= 0)"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_state(state)
        self.sums = torch.tensor(state["sums"], dtype=torch.float64, device=self.sums.device)
        self.examples, self.batches = state["examples"], state["batches"]


def check_saved_handover(state: Any, new_twin, window: ValidationWindow | None) -> None:
    """Raise ValueError unless ``state`` is a hand-over's saved state that this optimizer
    (its twin's shapes, ``new_twin()`` when none is kept now; its window) can resume."""
    if not isinstance(state, dict) or not {"watch", "handed_over_at", "twin"} <= set(state):
        raise ValueError(
            "state_dict lacks the hand-over's entry (watch, handed_over_at, twin): it "
            "was saved by an optimizer without handover, which this one cannot resume"
        )
    HandoverWatch.check_state(state["watch"])
    at = state["handed_over_at"]
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
        raise ValueError(f"the hand-over's handed_over_at must be None or an int; got {at!r}")
    if (at is None) != (state["twin"] is not None):
        raise ValueError("the hand-over's twin must be there exactly until it handed over")
    if state["twin"] is not None:
        new_twin().check_state(state["twin"])
    if window is not None and "window" in state:  # older checkpoints: an empty window
        window.check_state(state["window"])


class PlainTwin:
    """The model as plain training has it: a copy of the model (parameters, buffers, mode)
    and of the base optimizer (same class, hyper-parameters and state), stepped on the task
    loss with every batch passed to ``step`` (those whose learned-loss step was rejected
    too)."""

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        task: Task,
        replicas: Replicas,
    ) -> None:
        self.model = copy.deepcopy(model)
        self.task = task
        self.replicas = replicas
        names = {p: n for n, p in model.named_parameters()}
        twins = dict(self.model.named_parameters())
        groups = [
            {**{k: v for k, v in g.items() if k != "params"},
             "params": [twins[names[p]] for p in g["params"]]}
            for g in base_optimizer.param_groups
        ]  # fmt: skip
        # Every group carries its hyper-parameters; the constructor gets the defaults it
        # accepts (torch's AdamW keeps a "decoupled_weight_decay" default it refuses).
        accepted = inspect.signature(type(base_optimizer)).parameters
        defaults = {k: v for k, v in base_optimizer.defaults.items() if k in accepted}
        self.optimizer = type(base_optimizer)(groups, **defaults)
        # torch's load_state_dict keeps tensors that need no cast: copy, never share
        self.optimizer.load_state_dict(copy.deepcopy(base_optimizer.state_dict()))
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]

    def follow(self, base_optimizer: torch.optim.Optimizer) -> None:
        """Take the base optimizer's hyper-parameters (a scheduler's learning rate)."""
        groups = zip(self.optimizer.param_groups, base_optimizer.param_groups, strict=True)
        for mine, theirs in groups:
            mine.update({k: v for k, v in theirs.items() if k != "params"})

    def step(self, x: torch.Tensor, y: torch.Tensor, grad_scale: float = 1.0, then=None) -> bool:
        """One plain step on (x, y); False (and nothing changed) if it was not finite.

        Any exception — in the step or in ``then()``, called after it (what the optimizer
        does with the stepped twin) — leaves the twin as it was."""
        snapshot = self._snapshot()
        try:
            self.replicas.sync_buffers_(self.model)
            with torch.enable_grad():
                loss = self.task.loss(self.model(x), y)
                grads = scaled_grad(loss, self.params, grad_scale)
            grads = self.replicas.mean(grads)
            if not all_finite([loss, *grads]):
                self._restore(*snapshot)
                return False
            for p, g in zip(self.params, grads, strict=True):
                p.grad = g
            self.optimizer.step()
            if then is not None:
                then()
            return True
        except BaseException:
            self._restore(*snapshot)
            raise
        finally:
            for p in self.params:
                p.grad = None

    def _snapshot(self) -> tuple[list, OptimizerState, list[torch.Tensor]]:
        """Copies of the buffers, the optimizer state and θ, for ``_restore``."""
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        state = OptimizerState(self.optimizer, self.params, clone=True)
        return buffers, state, [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def _restore(self, buffers, state: OptimizerState, saved) -> None:
        for b, copy_ in buffers:
            b.copy_(copy_)
        for p, copy_ in zip(self.params, saved, strict=True):
            p.copy_(copy_)
        state.restore()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def check_state(self, state: Any) -> None:
        """Raise ValueError unless ``state`` is this twin's ``state_dict`` form, shapes included."""
        if not isinstance(state, dict) or not {"model", "optimizer"} <= set(state):
            raise ValueError("the twin's state must be a dict with 'model' and 'optimizer'")
        mine = self.model.state_dict()
        theirs = state["model"]
        if not isinstance(theirs, dict) or set(theirs) != set(mine):
            raise ValueError("the twin's model state does not have this model's entries")
        for key, value in mine.items():
            other = theirs[key]
            if not isinstance(other, torch.Tensor) or other.shape != value.shape:
                raise ValueError(
                    f"the twin's {key!r} has shape "
                    f"{tuple(getattr(other, 'shape', ()))}, this model's {tuple(value.shape)}"
                )
        kind = type(self.optimizer)
        check_optimizer_state(
            "handover.twin.optimizer",
            self.optimizer,
            state["optimizer"],
            HYPERPARAMETERS.get(kind, ()),
            STATE_KEYS.get(kind),
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))


@torch.no_grad()
def check_error(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``task.error`` of ``model`` on (x, y) in eval mode; the model's modes come back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        error = task.error(model(x), y)
    finally:
        for m, training in modes:
            m.training = training
    return error.detach() if torch.is_tensor(error) else torch.tensor(float(error))
