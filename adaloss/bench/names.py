"""The benchmark's vocabulary: method names and labels, metric labels, the paper's table order.

Defined here once so that the runner that writes result files, the tables and the
figures that read them, and the command all name and order things alike. A method's
name in results is a *key*: the paper's method plus its variant options joined by
``_`` (e.g. ``adalfl_default_eta0.001``); see ``adaloss.bench.config.RunConfig.key``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The paper's methods, in its column order; any other method key sorts after these.
METHODS: tuple[str, ...] = ("baseline", "ml3", "metalr", "adalfl")
#: The paper's names for its methods (Table 1's column headers).
METHOD_LABELS = {
    "baseline": "Baseline",
    "ml3": "ML3 (Offline)",
    "metalr": "Meta-LR (Online)",
    "adalfl": "AdaLFL (Online)",
}

#: Metric names in result files, and how tables and figures print them.
MSE, ERROR_RATE = "mse", "error_rate"
METRIC_LABELS = {MSE: "MSE", ERROR_RATE: "error rate"}

#: Tasks in the paper's row order (normalized: lower case, alphanumerics only).
TABLE_TASKS: tuple[str, ...] = (
    "crime",
    "diabetes",
    "california",
    "digits",
    "mnist",
    "cifar10",
    "cifar100",
    "svhn",
)
#: Models in the paper's row order within a task (normalized, matched as substrings).
TABLE_MODELS: tuple[str, ...] = (
    "logistic",
    "mlp",
    "lenet",
    "vgg",
    "allcnn",
    "resnet",
    "squeezenet",
    "wrn2810",
    "wrn168",
    "wrn",
)


def base_method(key: str) -> str:
    """The paper's method a method key is a variant of (``adalfl_default`` -> ``adalfl``)."""
    return str(key).split("_")[0]


def default_label(key: str) -> str:
    """The paper's label, with the key's variant options in brackets; unknown keys as they are."""
    method, *variants = str(key).split("_")
    if method not in METHOD_LABELS:
        return str(key)
    label = METHOD_LABELS[method]
    return f"{label} [{', '.join(variants)}]" if variants else label


def method_label(key: str, results: Iterable[dict] = ()) -> str:
    """Display name of a method key: the first ``label`` in its results, else the default."""
    for r in results:
        if r.get("method") == key and r.get("label"):
            return str(r["label"])
    return default_label(key)


def method_order(keys: Iterable[str]) -> list[str]:
    """Unique method keys, the paper's methods first in its order, the rest alphabetically."""
    unique = set(keys)
    known = [m for m in METHODS if m in unique]
    return known + sorted(unique - set(METHODS))


def metric_label(metric: str) -> str:
    """How a table or figure names ``metric`` (``mse`` -> ``MSE``); unknown names as they are."""
    return METRIC_LABELS.get(metric, metric)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _task_rank(task: str) -> int:
    t = _norm(task)
    for i, known in enumerate(TABLE_TASKS):
        # "cifar10" must not claim "cifar100": a prefix match may not run on into a digit.
        if t == known or (t.startswith(known) and not t[len(known)].isdigit()):
            return i
    return len(TABLE_TASKS)


def _model_rank(model: str) -> int:
    m = _norm(model)
    for i, known in enumerate(TABLE_MODELS):
        if known in m:
            return i
    return len(TABLE_MODELS)


def row_key(task: str, model: str) -> tuple:
    """Sort key for a (task, model) row: paper order first, then alphabetical."""
    return (_task_rank(task), str(task), _model_rank(model), str(model))
