"""scripts/selection_agreement.py pairs each method key with the right baseline and counts
agreement between the selection and test splits row by row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from selection_agreement import comparisons, summary  # noqa: E402


def _write(
    root: Path, folder: str, key: str, seed: int, sel: float, test: float, lr=0.001, steps=10
):
    path = root / folder / "crime" / "adaloss_mlp" / key / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task": "crime", "model": "adaloss_mlp", "method": key, "seed": seed,
        "config": {"steps": steps, "lr": lr},
        "final": {"selection_error": sel, "test_error": test, "diverged": False},
    }  # fmt: skip
    path.write_text(json.dumps(record))


def _seeds(root, folder, key, sel, test, **kw):
    for s in range(3):
        _write(root, folder, key, s, sel + 0.001 * s, test + 0.001 * s, **kw)


def test_pairs_own_check_and_reference_baselines(tmp_path):
    _seeds(tmp_path, "confirm", "baseline", 0.10, 0.20)
    _seeds(tmp_path, "confirm", "better", 0.09, 0.19)  # agrees: lower on both
    _seeds(tmp_path, "check", "baseline_check0.5", 0.10, 0.20)
    _seeds(tmp_path, "check", "m_check0.5", 0.11, 0.19)  # disagrees in sign
    _seeds(tmp_path, "screen", "m_patience", 0.09, 0.21)  # no own baseline: the reference's
    _seeds(tmp_path, "lr-half", "baseline", 0.10, 0.21, lr=0.0005)  # a baseline at another lr
    _seeds(tmp_path, "copy", "baseline", 0.10, 0.20)  # the reference's plain run again: no pair
    _seeds(tmp_path, "short", "m", 0.05, 0.05, steps=5)  # other length, no baseline: no pair
    found = {(c.folder, c.method): c for c in comparisons(tmp_path, reference_folders=("confirm",))}
    assert set(found) == {
        ("confirm", "better"), ("check", "m_check0.5"), ("screen", "m_patience"),
        ("lr-half", "baseline"),
    }  # fmt: skip
    assert found[("check", "m_check0.5")].baseline == "check/baseline_check0.5"
    assert found[("screen", "m_patience")].baseline == "confirm/baseline"
    better = found[("confirm", "better")]
    assert better.selection["beats"] and better.test["beats"]
    assert abs(better.test["mean_diff"] + 0.01) < 1e-12
    (row,) = summary(list(found.values()))
    # task, model, comparisons, same sign, selection ties, r, beats sel / test / both
    assert row[:5] == ["crime", "adaloss_mlp", "4", "1/3", "1"]
    assert row[6:] == ["2", "2", "1"]


def test_the_script_runs_on_the_committed_results():
    import subprocess

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "selection_agreement.py")],
                          capture_output=True, text=True, timeout=300, cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| digits | adaloss_mlp |" in done.stdout
