"""Result files: where a run's record lives, how it is written and read back, and its fields.

``adaloss run`` writes one JSON record per run at
``DIR/<task>/<model>/<method key>/seed<N>.json``; ``adaloss table`` and ``adaloss plot``
read every record under a folder. This module is the one place that knows that layout,
so that writer and readers cannot drift apart. It needs no torch.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

#: The data splits a run reports a final error on (``final.<split>_error``); see datasets.
SPLITS = ("test", "selection", "val", "train")
#: How tables name each split.
SPLIT_LABELS = {"test": "test", "selection": "selection", "val": "validation", "train": "training"}
#: The fields that make a JSON file a run record.
RECORD_KEYS = ("task", "model", "method", "seed")


def result_path(out: str | Path, task: str, model: str, method: str, seed: int) -> Path:
    """Where the record of one run lives under the result folder ``out``."""
    return Path(out) / task / model / method / f"seed{seed}.json"


def states_path(path: Path) -> Path:
    """Where ``adaloss run --save-states`` keeps the final θ and ϕ of the run at ``path``."""
    return path.with_suffix(".pt")


def write_result(path: Path, record: dict) -> None:
    """Atomic write: a crash never leaves a half-written result that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, allow_nan=True))
    os.replace(tmp, path)


def load_results(directory: str | Path) -> list[dict]:
    """Every result JSON under ``directory`` (recursive), in path order.

    Files that fail to parse, or are not a run record with ``task``, ``model``,
    ``method`` and ``seed``, are skipped with a warning. Each record gets a ``_path``
    key with the file it came from.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"result directory not found: {root}")
    results = []
    for path in sorted(root.rglob("*.json")):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warnings.warn(f"skipping unreadable result file {path}: {exc}", stacklevel=2)
            continue
        if not isinstance(data, dict) or any(k not in data for k in RECORD_KEYS):
            warnings.warn(
                f"skipping {path}: not a run record (needs task, model, method, seed)",
                stacklevel=2,
            )
            continue
        data["_path"] = str(path)
        results.append(data)
    return results


def to_float(value: Any) -> float:
    """JSON number (or null) -> float; anything unusable becomes NaN."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def final_error(result: dict, split: str = "test") -> float:
    """The run's final error on ``split`` (see SPLITS) as a float (NaN when missing)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return to_float((result.get("final") or {}).get(f"{split}_error"))
