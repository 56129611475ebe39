"""lr_horizon: the learned step length's hypergradient over many steps (adaloss.steptrace)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import mlp

import adaloss
from adaloss.recipes import Recipe

TASK = adaloss.Classification(3)


def batches(count=4):
    out = []
    for seed in range(count):
        g = torch.Generator().manual_seed(seed)
        out.append((
            torch.randn(16, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (16,), generator=g),
            torch.randn(12, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (12,), generator=g),
        ))  # fmt: skip
    return out


def frozen(optimizer, options, horizon, a=0.0, **kwargs):
    """ϕ and a held still (η = 0), no guard: the trace is then exact, not an approximation."""
    torch.manual_seed(0)
    model = mlp().double()
    opt = adaloss.MetaLossOptimizer(
        model, optimizer(model.parameters(), **options), TASK, learn_lr=True,
        lr_horizon=horizon, handover=False, guard=False, meta_lr=0.0, horizon="step", **kwargs,
    )  # fmt: skip
    with torch.no_grad():
        opt.step_length.log_factor.fill_(a)
    return opt


def a_gradient(opt, data):
    for x, y, xv, yv in data[:-1]:
        opt.step(x, y, xv, yv)
    return float(opt.meta_gradient(*data[-1])[-1])


@pytest.mark.parametrize(
    "optimizer, options",
    [
        (torch.optim.SGD, {"lr": 0.1}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
        (torch.optim.Adam, {"lr": 0.01}),
    ],
)
def test_the_whole_run_trace_is_the_derivative_through_every_step(optimizer, options):
    data = batches()
    traced = a_gradient(frozen(optimizer, options, math.inf), data)

    def final_loss(a):
        opt = frozen(optimizer, options, math.inf, a)
        for x, y, xv, yv in data:
            opt.step(x, y, xv, yv)
        with torch.no_grad():
            return float(TASK.loss(opt.model(data[-1][2]), data[-1][3]))

    eps = 1e-5
    central = (final_loss(eps) - final_loss(-eps)) / (2 * eps)
    one_step = a_gradient(frozen(optimizer, options, None), data)
    assert traced == pytest.approx(central, rel=1e-6, abs=1e-12)
    assert abs(one_step - central) > 100 * abs(traced - central)  # the trace is what differs


def test_a_finite_horizon_decays_what_earlier_steps_did():
    """Two steps: d/da = this step's own share + γ·the first step's, γ = 1 − 1/K."""
    data = batches(2)
    sgd = torch.optim.SGD, {"lr": 0.1, "momentum": 0.5}
    whole = a_gradient(frozen(*sgd, math.inf), data)
    own = a_gradient(frozen(*sgd, None), data)
    assert a_gradient(frozen(*sgd, 4), data) == pytest.approx(own + 0.75 * (whole - own), 1e-12)
    assert frozen(*sgd, 1).step_trace is None  # K = 1 is the one-step objective itself


def test_the_trace_is_checkpointed_and_a_failed_step_leaves_it():
    data = batches()
    opt = frozen(torch.optim.Adam, {"lr": 0.01}, 10)
    for x, y, xv, yv in data[:2]:
        opt.step(x, y, xv, yv)
    state, weights = copy.deepcopy(opt.state_dict()), copy.deepcopy(opt.model.state_dict())
    kept = opt.step_trace.value

    def fail(*args):
        raise RuntimeError("after the commit")

    opt._after_step = fail
    with pytest.raises(RuntimeError, match="after the commit"):
        opt.step(*data[2])
    assert opt.step_trace.value == kept  # the same tensors, not new ones
    del opt._after_step
    fresh = frozen(torch.optim.Adam, {"lr": 0.01}, 10)
    fresh.model.load_state_dict(weights)
    fresh.load_state_dict(state)
    expected = opt.meta_gradient(*data[2])[-1]
    assert float(fresh.meta_gradient(*data[2])[-1]) == float(expected)
    restarted = frozen(torch.optim.Adam, {"lr": 0.01}, 10)
    restarted.model.load_state_dict(weights)
    restarted.load_state_dict({k: v for k, v in state.items() if k != "step_trace"})
    assert float(restarted.meta_gradient(*data[2])[-1]) != float(expected)
    state["step_trace"]["params"] = state["step_trace"]["params"][1:]
    with pytest.raises(ValueError, match="step_trace .* does not have the model's parameter"):
        restarted.load_state_dict(state)


def test_lr_horizon_is_refused_where_it_cannot_work():
    model = mlp().double()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    for wrong in (0.5, 0, True, "long"):
        with pytest.raises(ValueError, match="lr_horizon must be None or a number of steps >= 1"):
            adaloss.MetaLossOptimizer(model, base, TASK, learn_lr=True, lr_horizon=wrong)
    with pytest.raises(ValueError, match="it needs learn_lr"):
        adaloss.MetaLossOptimizer(model, base, TASK, learn_lr=False, lr_horizon=100)
    with pytest.raises(ValueError, match="it needs learn_lr"):  # no step length on regression
        adaloss.MetaLossOptimizer(model, base, adaloss.Regression(3), lr_horizon=100)
    assert adaloss.MetaLossOptimizer(model, base, TASK, lr_horizon=100).step_trace is not None
    with pytest.raises(ValueError, match="it needs learn_lr"):
        Recipe("x", start="warm_start", meta_lr=1e-3, guard=None, lr_horizon=100)
    for wrong in ({"hypergrad": "unroll"}, {"meta_every": 2}):
        with pytest.raises(ValueError, match="lr_horizon needs hypergrad='forward' and meta_e"):
            adaloss.MetaLossOptimizer(model, base, TASK, learn_lr=True, lr_horizon=100, **wrong)
    off = adaloss.MetaLossOptimizer(model, base, TASK, learn_lr=True, lr_horizon=False)
    assert off.step_trace is None and off.recipe.lr_horizon is None


def test_a_guarded_regression_run_carries_the_trace():
    """The guard mixes the task loss (mse_loss) into the base objective: its Hessian too."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = adaloss.MetaLossOptimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Regression(),
        learn_lr=True, lr_horizon=100, handover=False, guard=1.0, meta_lr=0.1,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        opt.step(*(torch.randn(16, c, generator=g) for c in (6, 1, 6, 1)))
    assert opt.guarded_steps > 0 and opt.step_trace.params is not None
    assert all(torch.isfinite(z).all() for z in opt.step_trace.params)
