"""scripts/keepfit_conflicts.py: it counts the conflicts the run's projection saw."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import keepfit_conflicts  # noqa: E402

import adaloss.hypergrad.forward as forward  # noqa: E402


def test_prints_one_line_per_block(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(forward, "kept", forward.kept)  # the script's wrapper is undone after
    argv = ["keepfit_conflicts.py", "--block", "4", "--", "run", "--task", "diabetes",
            "--methods", "adalfl", "--loss", "network", "--keep-fit", "--seeds", "1",
            "--steps", "8", "--eval-every", "4", "--out", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        keepfit_conflicts.run()
    assert stop.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    table = lines[lines.index(next(line for line in lines if "conflicts" in line)) + 1 :]
    assert [line.split()[0] for line in table] == ["0-4", "4-8"]
    for line in table:
        share, cosine = (float(v) for v in line.split()[1:])
        assert 0.0 <= share <= 1.0 and -1.0 <= cosine <= 1.0
    assert (tmp_path / "diabetes/adaloss_mlp/adalfl_default_keepfit/seed0.json").exists()


def test_watch_counts_along_the_default_run(tmp_path, monkeypatch, capsys):
    """``--watch`` leaves ϕ's meta-gradient as it is: the run is the default's, bit for bit."""
    import json

    from adaloss.bench.cli import main

    monkeypatch.setattr(forward, "kept", forward.kept)
    common = ["run", "--task", "diabetes", "--methods", "adalfl", "--loss", "network", "--seeds",
              "1", "--steps", "40", "--eval-every", "20", "--threads", "1", "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "default")]) == 0
    argv = ["keepfit_conflicts.py", "--watch", "--block", "40", "--", *common, "--keep-fit",
            "--out", str(tmp_path / "watched")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        keepfit_conflicts.run()
    assert stop.value.code == 0
    table = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert table[0] == "0-40" and 0.0 < float(table[1])  # it did see a conflict to leave alone
    runs = "diabetes/adaloss_mlp/{}/seed0.json"
    default = json.loads((tmp_path / "default" / runs.format("adalfl_default")).read_text())
    watched = json.loads((tmp_path / "watched" / runs.format("adalfl_default_keepfit")).read_text())
    assert watched["curve"] == default["curve"]
    assert watched["final"]["selection_error"] == default["final"]["selection_error"]
