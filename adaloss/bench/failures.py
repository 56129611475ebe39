"""When a benchmark run counts as failed: it diverged, or it collapsed.

- *Diverged*: ``final.diverged`` is true or its final test error is missing, NaN or
  infinite.
- *Collapsed*: it ended no better than it started on held-out data (final selection
  error ≥ the step-0 one; runs from before the selection split are judged on validation
  error), or it ended at chance: a classifier with error ≥ 1 − 2/C (accuracy at most
  twice chance), a regression no better on the selection split than predicting the
  training targets' mean (the record's ``mean_predictor_error``).

Tables count and show failed runs but never average them in; figures draw diverged runs
apart from the mean. Both ask this module, so a run fails by one rule everywhere.
"""

from __future__ import annotations

import math

from adaloss.bench.names import ERROR_RATE
from adaloss.bench.results import final_error, to_float

DIVERGED, COLLAPSED = "diverged", "collapsed"


def is_diverged(result: dict) -> bool:
    """True when the run is flagged diverged or has no finite final test error."""
    final = result.get("final") or {}
    return bool(final.get("diverged")) or not math.isfinite(final_error(result, "test"))


def is_collapsed(result: dict) -> bool:
    """True when a finite run ended no better than it started, or at chance (see above)."""
    if is_diverged(result):
        return False
    curve = result.get("curve") or {}
    split = "selection" if curve.get("selection_error") else "val"
    errors = [to_float(v) for v in curve.get(f"{split}_error") or []]
    if len(errors) >= 2 and math.isfinite(errors[0]) and errors[-1] >= errors[0]:
        return True
    classes = result.get("num_classes")
    if classes and result.get("metric") == ERROR_RATE:
        return final_error(result, split) >= 1 - 2 / int(classes)
    constant = to_float(result.get("mean_predictor_error"))
    if split == "selection" and math.isfinite(constant):
        return final_error(result, "selection") >= constant
    return False


def failure(result: dict) -> str:
    """ "diverged", "collapsed" or "" (the run trained)."""
    return DIVERGED if is_diverged(result) else COLLAPSED if is_collapsed(result) else ""
