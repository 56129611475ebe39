"""scripts/step_overhead.py runs and times every part it names (it reaches into the step's
internals, so a rename there must fail here, not in the next benchmark sitting)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_step_overhead_prints_every_part():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "step_overhead.py"),
            "--model",
            "mlp",
            "--rounds",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "ms" not in line]
    names = [row.split(" | ")[0][2:] for row in rows]
    assert names == [
        "plain step",
        "fixed step",
        "input check",
        "learned loss + h",
        "... + guard",
        "gradient check",
        "copies of θ, state",
    ]
    for row in rows:
        low, mid, ratio = (float(v) for v in row.strip(" |").split(" | ")[1:])
        assert 0 <= low <= mid and ratio >= 0
