"""The momentum horizon: the meta-objective measured where the step's momentum carries θ."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import OPTIMIZERS, batches, make_model, paper_optimizer
from torch import nn

import adaloss
from adaloss.inner import DifferentiableUpdate


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def test_momentum_horizons_read_each_optimizers_momentum():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    sgd = torch.optim.SGD([{"params": [a], "momentum": 0.9}, {"params": [b]}], lr=0.1)
    assert DifferentiableUpdate(sgd).momentum_horizons() == pytest.approx([10.0, 1.0])
    sgd.param_groups[0]["momentum"] = 0.5  # a momentum schedule (OneCycleLR) is followed
    assert DifferentiableUpdate(sgd).momentum_horizons() == pytest.approx([2.0, 1.0])
    adam = torch.optim.Adam([a, b], betas=(0.8, 0.999))
    assert DifferentiableUpdate(adam).momentum_horizons() == pytest.approx([5.0, 5.0])
    rms = torch.optim.RMSprop([a], momentum=0.75)
    assert DifferentiableUpdate(rms).momentum_horizons() == pytest.approx([4.0])
    assert DifferentiableUpdate(torch.optim.Adagrad([a])).momentum_horizons() == [1.0]


def horizon_optimizer(opt_name: str, engine: str, horizon: str | float, seed: int = 0):
    model = make_model("mlp", seed=seed)
    torch.manual_seed(7)
    base = OPTIMIZERS[opt_name](model.parameters())
    task = adaloss.Classification(3)
    opt = paper_optimizer(model, base, task, hypergrad=engine, meta_lr=1e-3, horizon=horizon)
    return model, opt


@pytest.mark.parametrize(
    "opt_name, horizon",
    [("momentum", "momentum"), ("nesterov", "momentum"), ("adam", "momentum"), ("sgd", 10.0)],
)
def test_engines_agree_with_a_horizon(opt_name, horizon, float64):
    data = batches((6,), 8)
    grads = {}
    for engine, h in [("unroll", horizon), ("forward", horizon), ("forward", "step")]:
        _, opt = horizon_optimizer(opt_name, engine, h)
        for t in range(3):  # a momentum buffer / Adam moments exist from the second step on
            opt.step(*data[2 * t], *data[2 * t + 1])
        grads[engine, h] = flat(opt.meta_gradient(*data[6], *data[7]))
    unroll, forward = grads["unroll", horizon], grads["forward", horizon]
    assert unroll.norm() > 0
    assert (forward - unroll).norm() <= 1e-8 * unroll.norm()
    # ... and the horizon changes the answer, so the comparison has teeth
    assert (grads["forward", "step"] - forward).norm() > 1e-3 * forward.norm()


def test_horizon_measures_the_task_loss_where_heavy_ball_momentum_coasts(float64):
    """Heavy-ball SGD: θ_t + U/(1−μ) is where θ ends if every later gradient were zero."""
    task = adaloss.Classification(3)
    model = make_model("mlp")
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = paper_optimizer(model, base, task, meta_lr=1e-3, horizon="momentum")
    data = batches((6,), 6)
    opt.step(*data[0], *data[1])  # a momentum buffer now exists
    before = [p.detach().clone() for p in model.parameters()]
    coast_model, coast_base = copy.deepcopy((model, base))
    result = opt.step(*data[2], *data[3])
    # coast from the committed step: zero gradients, the buffer decaying by μ each step
    coast_base.load_state_dict(base.state_dict())
    for p, q in zip(coast_model.parameters(), model.parameters(), strict=True):
        p.data.copy_(q)
    for _ in range(400):  # 0.9^400 ≈ 5e-19
        for p in coast_model.parameters():
            p.grad = torch.zeros_like(p)
        coast_base.step()
    lookahead = [
        b + 10.0 * (p.detach() - b) for b, p in zip(before, model.parameters(), strict=True)
    ]
    for c, point in zip(coast_model.parameters(), lookahead, strict=True):
        torch.testing.assert_close(c.detach(), point, rtol=1e-12, atol=1e-12)
    names = [n for n, _ in model.named_parameters()]
    measured = torch.func.functional_call(
        model, dict(zip(names, lookahead, strict=True)), data[3][0]
    )
    assert float(result.task_loss) == pytest.approx(
        float(task.loss(measured, data[3][1])), rel=1e-12
    )
    with torch.no_grad():
        at_next_step = float(task.loss(model(data[3][0]), data[3][1]))
    assert float(result.task_loss) != pytest.approx(at_next_step)


def test_without_momentum_the_horizon_is_the_paper_step(float64):
    runs = {}
    for horizon in ("step", "momentum"):
        model, opt = horizon_optimizer("sgd", "forward", horizon)
        for x, y in batches((6,), 6):
            opt.step(x, y, x, y)
        runs[horizon] = (flat(model.parameters()), flat(opt.loss.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(*runs.values(), strict=True))


def test_a_numeric_horizon_measures_the_task_loss_h_updates_ahead(float64):
    """Plain SGD, H = 4: L_T is read at θ_t + 4·(θ_{t+1} − θ_t); θ_{t+1} itself is the step's."""
    task = adaloss.Classification(3)
    model = make_model("mlp")
    twin = copy.deepcopy(model)
    torch.manual_seed(7)  # ϕ_0: the same random loss network for both
    opt = paper_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), task,
                          meta_lr=1e-3, horizon=4)  # fmt: skip
    torch.manual_seed(7)
    step = paper_optimizer(twin, torch.optim.SGD(twin.parameters(), lr=0.1), task,
                           meta_lr=1e-3, horizon="step")  # fmt: skip
    x, y, xv, yv = *batches((6,), 2)[0], *batches((6,), 2)[1]
    before = [p.detach().clone() for p in model.parameters()]
    result = opt.step(x, y, xv, yv)
    step.step(x, y, xv, yv)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the base step does not change
    names = [n for n, _ in model.named_parameters()]
    ahead = [b + 4.0 * (p.detach() - b) for b, p in zip(before, model.parameters(), strict=True)]
    measured = torch.func.functional_call(model, dict(zip(names, ahead, strict=True)), xv)
    assert float(result.task_loss) == pytest.approx(float(task.loss(measured, yv)), rel=1e-12)


def test_horizon_ten_is_the_momentum_horizon_of_momentum_point_nine(float64):
    runs = {}
    for horizon in (10.0, "momentum"):
        model, opt = horizon_optimizer("momentum", "forward", horizon)
        assert opt.base_optimizer.param_groups[0]["momentum"] == 0.9
        phi_0 = flat(opt.loss.parameters())
        for x, y in batches((6,), 6):
            opt.step(x, y, x, y)
        runs[horizon] = (flat(model.parameters()), flat(opt.loss.parameters()))
        assert not torch.equal(runs[horizon][1], phi_0)  # ϕ adapted: the horizon mattered
    for a, b in zip(*runs.values(), strict=True):  # 1/(1 − 0.9) is 10 to one ulp
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_bad_horizons_are_refused_before_anything_changes():
    model = make_model("mlp")
    for bad, message in [(0.5, ">= 1"), (float("inf"), ">= 1"), (float("nan"), ">= 1"),
                         (True, "one of"), ("10", "one of")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            adaloss.MetaLossOptimizer(
                model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
                horizon=bad,
            )  # fmt: skip
    with pytest.raises(ValueError, match="horizon must be one of"):
        adaloss.MetaLossOptimizer(
            model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
            horizon="forever",
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"momentum in \[0, 1\)"):
        adaloss.MetaLossOptimizer(
            model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=1.0),
            adaloss.Classification(3), horizon="momentum",
        )  # fmt: skip
