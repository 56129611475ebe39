"""AnchoredAdam: Adam plus a decoupled pull toward each parameter's first-step start."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import adaloss
from adaloss.bench.config import RunConfig
from adaloss.bench.runner import prepare_run


def _steps(opt, param, grads):
    for g in grads:
        param.grad = g.clone()
        opt.step()


def test_anchor_zero_is_adam():
    torch.manual_seed(0)
    grads = [torch.randn(5) for _ in range(20)]
    a = torch.randn(5, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    _steps(torch.optim.Adam([a], lr=0.01), a, grads)
    _steps(adaloss.AnchoredAdam([b], lr=0.01, anchor=0.0), b, grads)
    assert torch.equal(a, b)


def test_without_gradient_signal_the_pull_closes_the_gap_geometrically():
    p = torch.zeros(3, requires_grad=True)
    opt = adaloss.AnchoredAdam([p], lr=0.1, anchor=2.0, betas=(0.0, 0.999))
    _steps(opt, p, [torch.tensor([1.0, -2.0, 3.0])])  # moves away from the start, 0
    after_one = p.detach().clone()
    assert after_one.abs().min() > 0
    _steps(opt, p, [torch.zeros(3)] * 5)  # β1 = 0: Adam's own update is exactly 0 now
    expected = after_one * (1 - 0.1 * 2.0) ** 5
    torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)


def test_a_consistent_gradient_still_moves_the_parameter_about_one_over_anchor():
    p = torch.zeros(1, requires_grad=True)
    opt = adaloss.AnchoredAdam([p], lr=1e-3, anchor=1.0)
    _steps(opt, p, [torch.ones(1)] * 10_000)
    # Equilibrium of −lr·sign + lr·anchor·(0 − p): p = −1/anchor.
    assert float(p.detach()) == pytest.approx(-1.0, rel=0.02)


def test_the_start_travels_in_the_state_dict():
    torch.manual_seed(1)
    grads = [torch.randn(4) for _ in range(12)]
    p = torch.randn(4, requires_grad=True)
    start = p.detach().clone()
    opt = adaloss.AnchoredAdam([p], lr=0.05, anchor=3.0)
    _steps(opt, p, grads[:6])
    saved, saved_p = copy.deepcopy(opt.state_dict()), p.detach().clone()  # a checkpoint
    torch.testing.assert_close(saved["state"][0]["anchor"], start, rtol=0, atol=0)
    _steps(opt, p, grads[6:])

    q = saved_p.clone().requires_grad_()
    resumed = adaloss.AnchoredAdam([q], lr=0.05, anchor=3.0)
    resumed.load_state_dict(saved)
    _steps(resumed, q, grads[6:])
    assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("anchor", "kwargs", "error"),
    [
        (-1.0, {}, ValueError),
        (math.nan, {}, ValueError),
        (math.inf, {}, ValueError),
        (True, {}, TypeError),
        ("1", {}, TypeError),
        (2000.0, {"lr": 1e-3}, ValueError),  # lr·anchor > 1 would overshoot the start
    ],
)
def test_bad_anchors_are_refused(anchor, kwargs, error):
    with pytest.raises(error, match="anchor"):
        adaloss.AnchoredAdam([torch.zeros(1, requires_grad=True)], anchor=anchor, **kwargs)


def test_the_runner_updates_phi_with_anchored_adam_at_the_recipe_eta():
    config = RunConfig(task="diabetes", model="adaloss_mlp", method="adalfl",
                       recipe="default", seed=0, steps=3, lr=0.001, meta_anchor=1.0)  # fmt: skip
    assert config.key == "adalfl_default_anchor1"
    run = prepare_run(config)
    meta = run.opt.meta_optimizer
    assert isinstance(meta, adaloss.AnchoredAdam)
    assert meta.param_groups[0]["lr"] == config.recipe_settings.meta_lr
    assert meta.param_groups[0]["anchor"] == 1.0
    start = [p.detach().clone() for p in run.opt.meta_params]
    run.step()
    for p, s in zip(run.opt.meta_params, start, strict=True):
        assert torch.equal(meta.state[p]["anchor"], s)  # the warm-started ϕ
    plain = RunConfig(task="diabetes", model="adaloss_mlp", method="adalfl",
                      recipe="default", seed=0, steps=3, lr=0.001)  # fmt: skip
    assert type(prepare_run(plain).opt.meta_optimizer) is torch.optim.Adam


def test_a_closure_that_makes_the_gradient_still_records_the_start():
    p = torch.ones(2, requires_grad=True)
    opt = adaloss.AnchoredAdam([p], lr=0.1, anchor=1.0)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(opt.state[p]["anchor"], torch.ones(2), rtol=0, atol=0)
    assert (p.detach() < 1).all()
