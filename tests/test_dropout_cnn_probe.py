"""scripts/dropout_cnn_probe.py: every method starts from the same θ_0, so its rows pair."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import dropout_cnn_probe  # noqa: E402


def test_methods_start_from_the_seeds_model():
    runs = {
        m: dropout_cnn_probe.run(m, seed=1, steps=0) for m in ("plain", "quick start", "hand-over")
    }
    assert len({(r["selection"], r["test"]) for r in runs.values()}) == 1  # the same θ_0
    assert runs["plain"]["init_s"] == 0.0 and runs["quick start"]["init_s"] > 0.0
    assert runs["hand-over"]["handed_over_at"] is None  # a tie at step 0 keeps the model
    other_seed = dropout_cnn_probe.run("plain", seed=2, steps=0)
    assert (other_seed["selection"], other_seed["test"]) != (
        runs["plain"]["selection"],
        runs["plain"]["test"],
    )
