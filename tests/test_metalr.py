"""Meta-LR baseline: the learned learning rate's hypergradient and its bookkeeping."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import batches, make_model

import adaloss


def build(momentum=0.9, meta_lr=1e-3, horizon="step"):
    model = make_model("mlp")
    base = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": [*model[2].parameters(), *model[4].parameters()], "lr": 0.05},
        ],
        lr=0.1,
        momentum=momentum,
    )
    task = adaloss.Classification(3)
    return model, adaloss.MetaLROptimizer(model, base, task, meta_lr=meta_lr, horizon=horizon)


def test_learning_rate_hypergradient_matches_finite_difference(float64):
    model, opt = build()
    data = batches((6,), 4)
    opt.step(*data[0], *data[1])  # a momentum buffer exists
    (analytic,) = opt.meta_gradient(*data[2], *data[3])

    def val_loss(lr: float) -> float:
        m, o = copy.deepcopy((model, opt.base_optimizer))
        for group, ratio in zip(o.param_groups, opt.ratios, strict=True):
            group["lr"] = lr * ratio
        o.zero_grad()
        adaloss.Classification(3).loss(m(data[2][0]), data[2][1]).backward()
        o.step()
        return float(adaloss.Classification(3).loss(m(data[3][0]), data[3][1]).detach())

    lr, eps = float(opt.lr.detach()), 1e-6
    numeric = (val_loss(lr + eps) - val_loss(lr - eps)) / (2 * eps)
    assert float(analytic) == pytest.approx(numeric, rel=1e-5)
    assert abs(numeric) > 1e-6


def test_param_groups_show_the_learned_rate_and_keep_their_ratio(float64):
    model, opt = build(meta_lr=1e-2)
    for x, y in batches((6,), 5):
        assert opt.step(x, y).meta_updated
    lr = float(opt.lr.detach())
    assert lr != pytest.approx(0.1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([lr, lr * 0.5])


def test_initialize_moves_the_rate_and_restores_the_model(float64):
    model, opt = build(momentum=0.0)
    theta0 = [p.clone() for p in model.parameters()]
    data = batches((6,), 4)
    losses = opt.initialize(data[:2], data[2:], steps=5, meta_lr=1e-2)
    assert len(losses) == 5 and float(opt.lr.detach()) != pytest.approx(0.1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), theta0, strict=True))
    with pytest.raises(ValueError, match="inner_steps=1"):
        opt.initialize(data[:2], data[2:], steps=1, inner_steps=2)


def test_frozen_rate_is_the_baseline(float64):
    model, opt = build(momentum=0.0)
    twin = make_model("mlp")
    twin_opt = copy.deepcopy(opt.base_optimizer)
    twin_opt.param_groups[0]["params"] = list(twin[0].parameters())
    twin_opt.param_groups[1]["params"] = [*twin[2].parameters(), *twin[4].parameters()]
    opt.online = False
    for x, y in batches((6,), 3):
        opt.step(x, y)
        twin_opt.zero_grad()
        adaloss.Classification(3).loss(twin(x), y).backward()
        twin_opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("kind", [torch.optim.Adam, torch.optim.AdamW])
def test_adam_rate_hypergradient_matches_finite_difference_and_round_trips(kind, float64):
    """Adam's update is linear in lr too: dL/dα = ⟨v, U₁⟩; a checkpoint continues exactly."""
    data = batches((6,), 8)

    def make():
        model = make_model("mlp")
        base = kind(model.parameters(), lr=1e-2, weight_decay=1e-2)
        return model, adaloss.MetaLROptimizer(model, base, adaloss.Classification(3), meta_lr=1e-3)

    model, opt = make()
    opt.step(*data[0], *data[1])  # Adam moments exist
    (analytic,) = opt.meta_gradient(*data[2], *data[3])

    def val_loss(lr: float) -> float:
        m, o = copy.deepcopy((model, opt.base_optimizer))
        for group in o.param_groups:
            group["lr"] = lr
        o.zero_grad()
        adaloss.Classification(3).loss(m(data[2][0]), data[2][1]).backward()
        o.step()
        return float(adaloss.Classification(3).loss(m(data[3][0]), data[3][1]).detach())

    lr = float(opt.lr.detach())
    coarse, fine = ((val_loss(lr + e) - val_loss(lr - e)) / (2 * e) for e in (1e-4, 5e-5))
    tol = 2 * abs(coarse - fine) + 1e-13
    assert tol < 1e-3 * abs(fine) and abs(float(analytic) - fine) <= tol
    assert abs(1.01 * float(analytic) - fine) > tol

    saved = copy.deepcopy((model.state_dict(), opt.state_dict()))
    for x, y in data[2:5]:
        opt.step(x, y, *data[1])
    model_b, opt_b = make()
    model_b.load_state_dict(saved[0])
    opt_b.load_state_dict(saved[1])
    assert [g["lr"] for g in opt_b.param_groups] == [float(saved[1]["meta_params"][0])]
    for x, y in data[2:5]:
        opt_b.step(x, y, *data[1])
    assert torch.equal(torch.cat([p.reshape(-1) for p in model_b.parameters()]),
                       torch.cat([p.reshape(-1) for p in model.parameters()]))  # fmt: skip
    assert torch.equal(opt_b.lr, opt.lr) and opt_b.steps == opt.steps


@pytest.mark.parametrize("horizon, h", [("momentum", 10.0), (4.0, 4.0)])
def test_horizon_rate_hypergradient_is_read_h_updates_ahead(horizon, h, float64):
    """dL_T(θ_t + H·(θ_{t+1}(α) − θ_t))/dα, against a finite difference of torch's own step."""
    model, opt = build(horizon=horizon)
    data = batches((6,), 4)
    opt.step(*data[0], *data[1])  # a momentum buffer exists
    (analytic,) = opt.meta_gradient(*data[2], *data[3])

    def val_loss(lr: float) -> float:
        m, o = copy.deepcopy((model, opt.base_optimizer))
        before = [p.detach().clone() for p in m.parameters()]
        for group, ratio in zip(o.param_groups, opt.ratios, strict=True):
            group["lr"] = lr * ratio
        o.zero_grad()
        adaloss.Classification(3).loss(m(data[2][0]), data[2][1]).backward()
        o.step()
        with torch.no_grad():
            for b, p in zip(before, m.parameters(), strict=True):
                p.copy_(b + h * (p - b))
        return float(adaloss.Classification(3).loss(m(data[3][0]), data[3][1]).detach())

    lr, eps = float(opt.lr.detach()), 1e-6
    numeric = (val_loss(lr + eps) - val_loss(lr - eps)) / (2 * eps)
    assert float(analytic) == pytest.approx(numeric, rel=1e-5)
    opt.horizon = "step"  # same state, the paper's one-step objective: a different answer
    (one_step,) = opt.meta_gradient(*data[2], *data[3])
    assert abs(float(one_step) - numeric) > 1e-2 * abs(numeric)


def test_without_momentum_the_rate_horizon_is_the_paper_step(float64):
    runs = []
    for horizon in ("step", "momentum"):
        model, opt = build(momentum=0.0, horizon=horizon)
        for x, y in batches((6,), 6):
            opt.step(x, y, x, y)
        runs.append((torch.cat([p.reshape(-1) for p in model.parameters()]), opt.lr.detach()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert "horizon='momentum'" in repr(opt)


def test_bad_rate_horizons_are_refused_at_construction():
    model = make_model("mlp")
    for bad in (0.5, float("inf"), True, "forever"):
        with pytest.raises(ValueError, match="horizon"):
            adaloss.MetaLROptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                    adaloss.Classification(3), horizon=bad)  # fmt: skip
    with pytest.raises(ValueError, match=r"momentum in \[0, 1\)"):
        adaloss.MetaLROptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=1.0),
                                adaloss.Classification(3), horizon="momentum")  # fmt: skip
