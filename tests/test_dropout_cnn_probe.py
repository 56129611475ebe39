"""scripts/dropout_cnn_probe.py: every method starts from the same θ_0, so its rows pair."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import dropout_cnn_probe  # noqa: E402


def test_methods_start_from_the_seeds_model():
    runs = {
        m: dropout_cnn_probe.run(m, seed=1, steps=0) for m in ("plain", *dropout_cnn_probe.METHODS)
    }
    assert len({(r["selection"], r["test"]) for r in runs.values()}) == 1  # the same θ_0
    assert runs["plain"]["init_s"] == 0.0 and runs["quick start"]["init_s"] > 0.0
    assert runs["hand-over"]["handed_over_at"] is None  # a tie at step 0 keeps the model
    assert len(runs["hand-over"]["checks"]) == 1  # finish's comparison
    assert runs["hand-over, no finish"]["checks"] == []  # none: no step, no finish
    other_seed = dropout_cnn_probe.run("plain", seed=2, steps=0)
    assert (other_seed["selection"], other_seed["test"]) != (
        runs["plain"]["selection"],
        runs["plain"]["test"],
    )


def test_summary_pairs_each_method_with_plain_on_the_same_seed(tmp_path, capsys):
    header = (
        "| method | seed | before step 1 (s) | total (s) | selection error | test error | x |\n"
    )
    (tmp_path / "a.md").write_text(
        header + "|---|--:|--:|--:|--:|--:|--:|\n"
        "| plain | 0 | 0.0 | 5.0 | 0.0200 | 0.0100 | — |\n"
        "| quick start | 0 | 0.3 | 20.0 | 0.0100 | 0.0300 | — |\n"
    )
    (tmp_path / "b.md").write_text(
        header + "| plain | 1 | 0.0 | 7.0 | 0.0400 | 0.0300 | — |\n"
        "| quick start | 1 | 0.5 | 30.0 | 0.0400 | 0.0200 | 2000 |\n"
    )
    dropout_cnn_probe.summarize(tmp_path)
    out = capsys.readouterr().out
    assert "plain: 6.0 s, selection 0.0300 (std 0.0141), test 0.0200 (std 0.0141)" in out
    assert (
        "quick start: 0.40 s, 25.00 s, selection -0.0050 (1 wins / 0 losses), "
        "test +0.0050 (1 wins / 1 losses)" in out
    )
