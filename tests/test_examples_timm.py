"""examples/timm_finetune.py runs end to end: digits, a local checkpoint, an ImageFolder."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_* models)

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "timm_finetune.py"
FAST = ["--init-steps", "2", "--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("timm_finetune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    fused = timm.layers.config._USE_FUSED_ATTN  # main() turns fused attention off globally
    yield module
    timm.layers.config._USE_FUSED_ATTN = fused
    sys.modules.pop(spec.name, None)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: predictable on small shared CI machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_digits_from_random_init(example, capsys):
    result = example.main(["--steps", "6", "--log-every", "3", *FAST])
    out = capsys.readouterr().out
    assert "no --checkpoint given: training from random initialization" in out
    assert "data scikit-learn digits, 10 classes, 3x32x32: train 1150, validation 288" in out
    assert "base optimizer: create_optimizer_v2('adamw') -> AdamW" in out
    assert re.search(r"warm start: learned-loss gradient mismatch 0\.\d{3}", out)
    logged = re.findall(r"step +(\d+)/6 .*task loss (\S+) .*accuracy (\S+)", out)
    assert [int(s) for s, _, _ in logged] == [3, 6]
    assert all(np.isfinite(float(loss)) for _, loss, _ in logged)
    assert re.search(r"test accuracy (\S+) \(359 images\)", out)
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["skipped_steps"] == 0


def test_checkpoint_is_loaded_through_timm(example, capsys, tmp_path):
    torch.manual_seed(123)
    source = timm.create_model("adaloss_lenet5", num_classes=10, in_chans=3, img_size=32)
    path = tmp_path / "lenet5.pth"
    torch.save(source.state_dict(), path)
    # lr 0: the base updates are zero, so the trained model must still be the checkpoint.
    argv = ["--checkpoint", str(path), "--steps", "2", "--lr", "0", *FAST]
    result = example.main(argv)
    out = capsys.readouterr().out
    assert f"loaded pretrained weights from {path}" in out
    assert "random initialization" not in out
    expected = source.state_dict()
    for key, value in result["model"].state_dict().items():
        if "running_" not in key and "num_batches" not in key:
            assert torch.equal(value, expected[key]), key


def test_image_folder_with_a_cifar_stem_resnet(example, capsys, tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "fox"):
        (tmp_path / label).mkdir()
        for i in range(8):
            pixels = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    argv = ["--data", str(tmp_path), "--model", "resnet18", "--cifar-stem", "--steps", "2"]
    result = example.main([*argv, "--init-steps", "1", "--batch-size", "4"])
    out = capsys.readouterr().out
    assert f"data ImageFolder {tmp_path}, 3 classes, 3x32x32: train 15, validation 4" in out
    assert "test accuracy" in out and "(5 images)" in out
    model = result["model"]
    assert model.num_classes == 3 and model.conv1.stride == (1, 1)
    assert all(torch.isfinite(p).all() for p in model.parameters())
