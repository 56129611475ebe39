"""``adaloss speed`` end to end on tiny settings, and its statistics (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from adaloss.bench import speed
from adaloss.bench.cli import main

METHODS = ("plain", "fixed", "unroll", "forward", "forward/10")


def _table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and "method" not in line
    ]


def test_speed_end_to_end_table_and_json(tmp_path, capsys):
    path = tmp_path / "speed.json"
    argv = ["--models", "lenet5", "--steps", "2", "--warmup", "1", "--rounds", "2"]
    argv += ["--batch", "4", "--threads", "1", "--markdown", "--json", str(path), "--quiet"]
    assert main(["speed", *argv]) == 0
    out = capsys.readouterr().out

    rows = _table_rows(out)
    assert [row[1] for row in rows] == list(METHODS)
    for row in rows:
        assert row[0] == "LeNet-5 (batch 4)"
        ms, t_ratio, peak, m_ratio = float(row[2]), float(row[4]), float(row[5]), float(row[6])
        assert ms > 0 and t_ratio > 0 and peak > 0 and m_ratio > 0
    assert rows[0][4] == "1.00" and rows[0][6] == "1.00"  # plain is its own reference
    assert "1 thread(s)" in out and "SGD (lr 0.01, momentum 0.9)" in out
    assert "Targets:" in out and "forward/10 ≤ 1.25× plain" in out and "fixed (no meta step)" in out

    results = json.loads(path.read_text())
    assert results["settings"]["threads"] == 1
    assert results["settings"]["base_optimizer"] == "torch.optim.SGD(lr=0.01, momentum=0.9)"
    assert {"date", "torch", "cpu", "load_average_start"} <= results["environment"].keys()
    methods = results["models"]["lenet5"]["methods"]
    assert list(methods) == list(METHODS)
    for name, m in methods.items():
        assert {"ms", "statistic", "times_ms", "steps", "peak_mib", "state_mib"} <= m.keys()
        assert m["peak_mib"] >= m["state_mib"] > 0
        assert m["skipped_steps"] == 0, name
    assert methods["plain"]["steps"] == 2 and len(methods["plain"]["times_ms"]) == 2
    # forward/10: whole 10-step cycles, at least two, and the mean over them.
    f10 = methods["forward/10"]
    assert f10["cycles"] == 2 and len(f10["times_ms"]) == 20
    assert f10["ms"] == pytest.approx(sum(f10["times_ms"]) / 20)
    # Meta steps hold more tensors than a plain step (the JVP, new θ and optimizer state).
    assert methods["forward"]["peak_mib"] > methods["plain"]["peak_mib"]
    targets = {(t["model"], t["target"]) for t in results["targets"]}
    assert {("lenet5", target) for target in speed.TARGETS} == targets


def test_speed_regression_mlp_without_memory(capsys):
    argv = ["speed", "--models", "mlp", "--methods", "plain,forward,forward/3", "--steps", "2"]
    argv += ["--warmup", "1", "--batch", "4", "--threads", "1", "--no-memory", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("MLP (batch 4)")]
    assert [line.split()[3] for line in lines] == ["plain", "forward", "forward/3"]
    assert "mlp: forward/10" not in out  # no forward/10 measured: no such target line


@pytest.mark.parametrize(
    "argv",
    [["--models", "vgg"], ["--methods", "plain,backward"], ["--methods", "forward/0"]],
)
def test_speed_rejects_bad_options(argv, capsys):
    assert main(["speed", *argv, "--quiet"]) == 2
    assert "adaloss speed: error" in capsys.readouterr().err


def test_python_m_speed_is_the_speed_command():
    argv = [sys.executable, "-m", "adaloss.bench.speed", "--models", "vgg", "--quiet"]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 2 and "adaloss speed: error: unknown model" in out.stderr


def test_parse_method():
    assert speed.parse_method("plain") == speed.Method("plain", None, 1)
    assert speed.parse_method("forward/10") == speed.Method("forward/10", "forward", 10)
    assert speed.parse_method("unroll").meta_every == 1
    fixed = speed.parse_method("fixed")
    assert fixed.engine == "forward" and not fixed.online and fixed.cycle == 1
    twin = speed.parse_method("forward/4+twin")
    assert twin == speed.Method("forward/4+twin", "forward", 4, twin=True) and twin.cycle == 4
    check = speed.parse_method("forward+check")
    assert check == speed.Method("forward+check", "forward", 1, twin=True, check_every=200)
    for bad in ("plain+twin", "fixed+twin", "+twin", "plain+check", "+check"):
        with pytest.raises(ValueError):
            speed.parse_method(bad)


def test_cycle_mean_sees_the_meta_step():
    method = speed.parse_method("forward/4")
    times = [0.010, 0.001, 0.001, 0.001] * 3  # one slow meta step per cycle
    summary = speed.summarize_times(method, times)
    assert summary["ms"] == pytest.approx(3.25)  # a median of single steps would say 1.0
    assert summary["cycles"] == 3
    assert speed.timed_steps(method, 5) == 8 and speed.timed_steps(method, 1) == 8
    assert speed.timed_steps(speed.parse_method("plain"), 5) == 5


def test_profiler_peak_counts_live_tensors():
    from torch.profiler import ProfilerActivity, profile, record_function

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        kept = torch.zeros(250_000)  # 1 MB, live before the window
        with record_function("window"):
            a = torch.zeros(500_000)  # +2 MB
            b = torch.zeros(250_000)  # +1 MB: peak 4 MB
            del a, b
            c = torch.zeros(125_000)  # 1.5 MB live at the end
            del c
    at_begin, peak = speed._profiler_peak(prof, "window")
    assert at_begin == pytest.approx(1e6, rel=0.01)
    assert peak == pytest.approx(4e6, rel=0.01)
    del kept
