"""Early stopping for the learned loss: stop adapting ϕ when adapting stops paying.

Why: ϕ descends the meta-objective (the task loss on validation batches) one step at a
time, yet on small data sets that loss can rise for thousands of steps while ϕ keeps
moving (BENCHMARKS.md, Diabetes: the default's validation MSE rose steadily and its
held-out error ended above plain training's on 10 of 10 seeds). Once the meta-objective
has not improved for ``patience`` steps, what ϕ learns from then on is not measured to
help, so the optimizer stops adapting; from then on it trains on the task loss itself (a
plain step) or, with ``after_stop="frozen"``, on the learned loss as it was. Like early
stopping, it reads only what the step already computes: the meta-objective's value,
averaged over about 1/(1 − decay) meta steps so that one lucky batch cannot set a low that
stands for good. The average starts at the first value, usually the highest, so it keeps
setting lows through the first few hundred steps. Screened at patience 1,000 (BENCHMARKS.md,
"Early stopping of the learned loss"): the task-loss fallback brings Diabetes back to plain
training but gives away the default's gain on crime with corrupted targets, so the default
recipe leaves it off.
"""

from __future__ import annotations

import math
from typing import Any


def check_patience(patience) -> None:
    """Refuse a patience that is neither None (no early stop) nor an integer >= 1."""
    if patience is not None and (
        isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
    ):
        raise ValueError(
            f"patience must be None or an integer number of steps >= 1, got {patience!r}"
        )


class MetaPatience:
    """Watches the meta-objective; ``observe`` says when to stop adapting ϕ."""

    def __init__(self, patience: int, decay: float = 0.99) -> None:
        if patience is None:
            raise ValueError("patience must be an integer number of steps >= 1, got None")
        check_patience(patience)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay!r}")
        self.patience = patience
        self.decay = float(decay)
        self.average: float | None = None  # moving average of the meta-objective
        self.best = math.inf  # its lowest value so far
        self.best_step = 0  # the step that set it
        self.stopped_at: int | None = None  # the step after which ϕ stopped adapting

    def observe(self, step: int, task_loss: float) -> bool:
        """Record the meta-objective of (0-based) ``step``; True when adapting should stop."""
        if self.stopped_at is not None:
            return True
        average = self.average
        average = (
            task_loss if average is None else self.decay * average + (1 - self.decay) * task_loss
        )
        self.average = average
        if average < self.best:
            self.best, self.best_step = average, step
        elif step - self.best_step >= self.patience:
            self.stopped_at = step
        return self.stopped_at is not None

    def state_dict(self) -> dict[str, Any]:
        return {
            "average": self.average,
            "best": self.best,
            "best_step": self.best_step,
            "stopped_at": self.stopped_at,
        }

    @staticmethod
    def check_state(state: Any) -> None:
        """Raise ValueError unless ``state`` has ``state_dict``'s form (checked before a load)."""
        if not isinstance(state, dict):
            raise ValueError(f"the patience state must be a dict, got {type(state).__name__}")
        missing = sorted({"average", "best", "best_step", "stopped_at"} - set(state))
        if missing:
            raise ValueError(f"the patience state lacks {', '.join(missing)}")
        for key, value in (("best_step", state["best_step"]), ("stopped_at", state["stopped_at"])):
            if (value is not None or key == "best_step") and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise ValueError(f"the patience state's {key} must be an int, got {value!r}")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_state(state)
        self.average, self.best = state["average"], float(state["best"])
        self.best_step, self.stopped_at = int(state["best_step"]), state["stopped_at"]

    def __repr__(self) -> str:
        return f"MetaPatience(patience={self.patience}, decay={self.decay:g})"
