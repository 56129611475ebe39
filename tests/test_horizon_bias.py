"""scripts/horizon_bias.py: its D_K is dL/d log lr, and its probes leave the main run alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import horizon_bias  # noqa: E402

from adaloss.bench.batching import full_batch  # noqa: E402
from adaloss.bench.config import RunConfig  # noqa: E402
from adaloss.bench.runner import prepare_run  # noqa: E402


def _run(steps: int = 0):
    config = RunConfig(task="diabetes", model="adaloss_mlp", method="baseline", seed=0,
                       steps=steps, lr=0.001)  # fmt: skip
    return prepare_run(config)


def test_one_step_difference_is_the_derivative_in_log_lr():
    torch.set_default_dtype(torch.float64)
    try:
        run = _run()
        run.model.double()
        batch = next(run.train)
        x, y = batch[0].double(), batch[1].double()
        lr = run.config.lr
        # Analytic: θ_1 = θ_0 − lr·g, so dL(θ_1)/d log lr = −lr ⟨∇L(θ_1), g⟩ at lr.
        params = list(run.model.parameters())
        g = torch.autograd.grad(run.task.loss(run.model(x), y), params)
        with torch.no_grad():
            for p, gi in zip(params, g, strict=True):
                p -= lr * gi
        xv, yv = full_batch(run.data.val)
        grad_after = torch.autograd.grad(run.task.loss(run.model(xv.double()), yv.double()), params)
        with torch.no_grad():
            for p, gi in zip(params, g, strict=True):
                p += lr * gi
        analytic = -lr * sum(float((a * b).sum()) for a, b in zip(grad_after, g, strict=True))

        run.data.val = run.data.val.__class__(xv.double(), yv.double())
        run.data.selection = run.data.val
        measured = horizon_bias.probe(run, [(x, y, None, None)], lr, 1.001, {1})
        assert measured["val", 1] < 0  # a longer first step lowers the loss here
        assert abs(measured["val", 1] - analytic) <= 1e-4 * abs(analytic)
    finally:
        torch.set_default_dtype(torch.float32)


def test_probes_leave_the_main_run_where_it_would_have_been():
    reference = _run(60)
    for _ in range(60):
        reference.step()

    probed = {}

    def capture(config):
        probed["run"] = prepare_run(config)
        return probed["run"]

    args = argparse.Namespace(task="diabetes", model="adaloss_mlp", lr=None, data_dir=None,
                              at=[0, 30], horizons=[1, 5, 20], factor=1.25)  # fmt: skip
    original = horizon_bias.prepare_run
    horizon_bias.prepare_run = capture
    try:
        rows = horizon_bias.run_seed(args, 0)
    finally:
        horizon_bias.prepare_run = original
    assert [stop for stop, _ in rows] == [0, 30]
    assert set(rows[0][1]) == {(s, k) for s in ("val", "selection") for k in (1, 5, 20)}
    run = probed["run"]
    for _ in range(30):  # 30 steps before the second stop, 30 after
        run.step()
    for a, b in zip(reference.model.parameters(), run.model.parameters(), strict=True):
        assert torch.equal(a, b)
