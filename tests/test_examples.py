"""The README's examples run: the quick-start loop, the hand-over, the `make demo` script,
the MNIST port."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_trains(capsys):
    error = load("quickstart").main(["--epochs", "3"])
    out = capsys.readouterr().out
    assert "epoch 3: learned loss" in out and "test error rate" in out
    assert error < 0.3  # 10 classes: chance is 0.9


def test_handover_example_checks_and_hands_over_once(capsys):
    """examples/handover.py: a check every epoch; once handed over, the model trains plain."""
    error, handed_over_at = load("handover").main(["--epochs", "5", "--handover", "1"])
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 5 and error < 0.5
    marks = [i for i, line in enumerate(epochs) if line.endswith("-> handed over")]
    if handed_over_at is None:  # the learned loss never fell behind at a check
        assert marks == [] and all("plain-trained twin" in line for line in epochs)
    else:
        assert len(marks) == 1  # at a check (the example calls no finish())
        after = epochs[marks[0] + 1 :]
        assert all(line.endswith("(plain training since the hand-over)") for line in after)
    assert lines[-1].startswith(f"handed over at step {handed_over_at}; test error rate")


@pytest.mark.slow
def test_demo_runs_briefly(capsys):
    load("demo").main(["--steps", "20"])
    out = capsys.readouterr().out
    assert "plain SGD + cross-entropy" in out and "AdaLFL (MetaLossOptimizer)" in out
    assert "relative difference" in out


def test_mnist_example_dry_run_reads_local_files(tmp_path, monkeypatch, capsys):
    """PyTorch's MNIST example ported to adaloss runs on MNIST files in the real
    on-disk (idx) format, read by torchvision from --data without any download."""
    import torchvision.datasets.mnist as tv_mnist
    from test_datasets import write_mnist

    write_mnist(tmp_path, n_train=40, n_test=12)

    def no_download(*args, **kwargs):
        raise AssertionError("the example tried to download MNIST")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_download)
    test_loss, accuracy = load("mnist_example").main(
        ["--dry-run", "--epochs", "1", "--no-accel", "--data", str(tmp_path),
         "--batch-size", "8", "--test-batch-size", "5"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [0/36 (0%)]\tLearned loss:" in out
    assert "Test set: Average loss:" in out and "/12 (" in out
    assert test_loss > 0 and 0.0 <= accuracy <= 1.0


@pytest.mark.slow
def test_ddp_example_runs_under_torchrun(tmp_path):
    """examples/ddp_train.py under torchrun, 2 gloo ranks on CPU: ranks stay identical."""
    import subprocess
    import sys

    checkpoint = tmp_path / "ddp.pt"
    example = str(EXAMPLES / "ddp_train.py")
    # --standalone: a free port of its own, not a fixed 29500 another process may hold.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               example, "--steps", "10", "--save", str(checkpoint)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    # A rank's own error comes long before torchrun's summary: show both.
    assert done.returncode == 0, done.stderr[:3000] + "\n...\n" + done.stderr[-1500:]
    assert "2 ranks, global batch 64: test error rate" in done.stdout
    assert "largest difference of θ and ϕ between ranks: 0.0e+00" in done.stdout
    assert checkpoint.exists()
