"""The divergence warning: say so while a learned loss drives the model away.

A learned loss can push the model away from the targets long before any value overflows
(BENCHMARKS.md, Diabetes at the paper's recipe): a user should hear about it while it
happens, not find a NaN hours later. The watch averages the meta-objective over ~10 meta
steps, so one unlucky batch cannot raise the alarm, and warns once.
"""

from __future__ import annotations

import math
import warnings

DIVERGENCE_FACTOR = 100.0  # warn when the meta-objective's average exceeds its best by this


class DivergenceWatch:
    """Warns once when the meta-objective's moving average rises 100-fold above its best."""

    def __init__(self, advice: str) -> None:
        self.advice = advice  # what the meta-learner's user can do about it
        self.average: float | None = None
        self.best = math.inf
        self.warned = False

    def observe(self, task_loss: float, stacklevel: int) -> None:
        """Record one meta step's meta-objective; ``stacklevel``: frames up to the user's call."""
        average = task_loss if self.average is None else 0.9 * self.average + 0.1 * task_loss
        self.average = average
        self.best = min(self.best, average)
        if not self.warned and average > DIVERGENCE_FACTOR * self.best:
            self.warned = True
            warnings.warn(
                f"adaloss: the task loss on the meta-objective batches averages {average:.4g}, "
                f"over {DIVERGENCE_FACTOR:g}x its best average {self.best:.4g}: training "
                f"may be diverging ({self.advice}; see BENCHMARKS.md)",
                RuntimeWarning,
                stacklevel=stacklevel + 1,
            )
