"""learn_lr: the base step's length r = e^a learned beside the loss (adaloss.steplength)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import mlp

import adaloss
import adaloss.handing_over
from adaloss.recipes import Recipe


def data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)
    xv = torch.randn(12, 6, generator=g, dtype=torch.float64)
    yv = torch.randint(0, 3, (12,), generator=g)
    return x, y, xv, yv


def wrapped(optimizer=torch.optim.SGD, options=None, **kwargs):
    torch.manual_seed(0)
    model = mlp().double()
    base = optimizer(model.parameters(), **(options or {"lr": 0.1, "momentum": 0.9}))
    kwargs.setdefault("handover", False)
    kwargs.setdefault("learn_lr", True)
    return adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3), **kwargs)


def set_log_factor(opt, value):
    with torch.no_grad():
        opt.step_length.log_factor.fill_(value)


@pytest.mark.parametrize(
    "optimizer, options, horizon",
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, "momentum"),
        (torch.optim.SGD, {"lr": 0.1}, "step"),
        (torch.optim.Adam, {"lr": 0.01}, "step"),
        (torch.optim.Adam, {"lr": 0.01}, 3.0),
    ],
)
def test_the_step_length_gradient_is_exact_in_both_engines(optimizer, options, horizon):
    """dL_T/da against the unrolled reference and a central difference in a."""
    x, y, xv, yv = data()
    grads = {}
    for engine in ("forward", "unroll"):
        opt = wrapped(optimizer, options, hypergrad=engine, horizon=horizon)
        for _ in range(2):
            opt.step(x, y, xv, yv)
        set_log_factor(opt, 0.4)
        grads[engine] = opt.meta_gradient(x, y, xv, yv)
    assert len(grads["forward"]) == len(opt.meta_params)  # ϕ's, then a's
    for f, u in zip(grads["forward"], grads["unroll"], strict=True):
        torch.testing.assert_close(f, u, rtol=1e-8, atol=1e-10)
    eps, losses = 1e-6, []
    for sign in (1.0, -1.0):
        moved = copy.deepcopy(opt)
        set_log_factor(moved, 0.4 + sign * eps)
        losses.append(float(moved.step(x, y, xv, yv).task_loss))  # L_T at θ_{t+1}
    difference = (losses[0] - losses[1]) / (2 * eps)
    assert abs(difference) > 1e-6  # the check has something to compare
    assert float(grads["unroll"][-1]) == pytest.approx(difference, rel=1e-5)


def test_a_step_is_the_plain_update_at_r_times_the_lr_and_lr_is_never_written():
    x, y, xv, yv = data()
    for meta_every, expect_meta in ((1, True), (2, False)):  # a meta step, then a plain one
        opt = wrapped(options={"lr": 0.1}, guard=False, meta_every=meta_every)
        opt.step(x, y, xv, yv)  # steps ϕ and a (and warm-starts ϕ)
        set_log_factor(opt, 0.7)
        before = [p.detach().clone() for p in opt.model.parameters()]
        learned = opt.loss(*opt.task.learned_loss_inputs(opt.model(x), y))  # guard off: M_ϕ
        grads = torch.autograd.grad(learned, list(opt.model.parameters()))
        result = opt.step(x, y, xv, yv)
        assert result.meta_updated is expect_meta
        assert opt.base_optimizer.param_groups[0]["lr"] == 0.1
        for p, p0, g in zip(opt.model.parameters(), before, grads, strict=True):
            torch.testing.assert_close(p, p0 - 0.1 * torch.e**0.7 * g, rtol=1e-10, atol=1e-12)


def test_a_hand_over_makes_the_steps_plain_again(monkeypatch):
    """The twin trains at the user's lr (never r×), and after the hand-over so does the run."""
    x, y, xv, yv = data()
    opt = wrapped(handover=1)
    plain = copy.deepcopy(opt.model)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    calls = iter([1.0, 0.5] * 10)  # every check sees the model behind its twin
    monkeypatch.setattr(adaloss.handing_over, "check_error", lambda *a: torch.tensor(next(calls)))
    for handed_over in (False, True, True):
        opt.step(x, y, xv, yv)
        plain_opt.zero_grad()
        torch.nn.functional.cross_entropy(plain(x), y).backward()
        plain_opt.step()
        if not handed_over:
            assert opt.step_factor != 1.0
            assert opt.check(xv, yv).handed_over
    for p, q in zip(opt.model.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_a_is_checkpointed_and_a_failed_step_leaves_it():
    x, y, xv, yv = data()
    opt = wrapped()
    for _ in range(3):
        opt.step(x, y, xv, yv)
    state = copy.deepcopy(opt.state_dict())
    factor = opt.step_factor
    assert factor != 1.0

    def fail(*args):
        raise RuntimeError("after the commit")

    opt._after_step = fail  # a failure late in the step, after a was stepped
    with pytest.raises(RuntimeError, match="after the commit"):
        opt.step(x, y, xv, yv)
    assert opt.step_factor == factor
    fresh = wrapped()
    fresh.load_state_dict(state)
    assert fresh.step_factor == factor
    model = mlp().double()
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    without = adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3), handover=False,
                                        learn_lr=False)  # fmt: skip
    with pytest.raises(ValueError, match="was it saved with the other learn_lr"):
        without.load_state_dict(state)
    with pytest.raises(ValueError, match="was it saved with the other learn_lr"):
        wrapped().load_state_dict(without.state_dict())


def test_learn_lr_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="learn_lr needs start='warm_start'"):
        Recipe("x", start="offline", meta_lr=1e-5, guard=None, learn_lr=True)
    model = mlp().double()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    meta = torch.optim.Adam(adaloss.LossNetwork().parameters())
    task = adaloss.Classification(3)
    with pytest.raises(ValueError, match="meta-optimizer MetaLossOptimizer builds"):
        adaloss.MetaLossOptimizer(model, base, task, meta_optimizer=meta, learn_lr=True)
    for wrong in (1, "shorter"):
        with pytest.raises(ValueError, match="learn_lr must be one of .*'longer'.*got"):
            adaloss.MetaLossOptimizer(model, base, task, learn_lr=wrong)
    with pytest.raises(ValueError, match="learn_lr must be one of"):
        Recipe("x", start="warm_start", meta_lr=1e-3, guard=None, learn_lr="Longer")
    assert adaloss.MetaLossOptimizer(model, base, task).step_factor == 1.0


@pytest.mark.parametrize("options", [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.01}])
def test_longer_only_lengthens_the_step(options):
    """Where the one-step objective shrinks r, "longer" holds r at 1 and trains exactly as
    the default does without learn_lr; where it grows r, "longer" is learn_lr itself."""
    x, y, xv, yv = data()
    free, longer = wrapped(options=options), wrapped(options=options, learn_lr="longer")
    without = wrapped(options=options, learn_lr=False)
    free_factors, longer_factors = [], []
    for _ in range(6):
        for opt in (free, longer, without):
            opt.step(x, y, xv, yv)
        free_factors.append(free.step_factor)
        longer_factors.append(longer.step_factor)
    if options["lr"] == 0.1:  # here every meta step asks for a shorter step
        assert max(free_factors) < 1.0
        assert longer_factors == [1.0] * 6
        same_as, other = without, free
    else:
        assert min(free_factors) > 1.0
        assert longer_factors == free_factors
        same_as, other = free, without
    for p, q, o in zip(longer.model.parameters(), same_as.model.parameters(),
                       other.model.parameters(), strict=True):  # fmt: skip
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
        assert not torch.allclose(p, o, rtol=1e-9, atol=0)


class SquaredErrorOnProbabilities(torch.nn.Module):
    """A learned loss with nothing to learn: only the step length is meta-learned."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target) ** 2).sum(-1).mean()


def test_a_loss_without_parameters_learns_the_step_length_alone():
    """The default on classification learns r; with a parameter-free loss there is no ϕ to
    warm-start, so initialize() and the first step start without a fit, and r still moves."""
    x, y, xv, yv = data()
    for start in ("initialize", "first step"):
        model = mlp().double()
        base = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = SquaredErrorOnProbabilities()
        opt = adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3), loss=loss,
                                        meta_lr=0.1)  # fmt: skip
        if start == "initialize":
            assert opt.initialize() == [] and opt.started
        for _ in range(3):
            assert opt.step(x, y, xv, yv).meta_updated
        assert opt.started and opt.step_factor != 1.0


def test_the_step_length_has_its_own_rate_and_phi_keeps_eta():
    """step_length_meta_lr: Adam steps a at its own rate, ϕ at η. At η itself it is the one
    Adam of before, bit for bit (Adam's update is per parameter); at 10× η, a moves further
    and ϕ's first meta step is unchanged."""
    x, y, xv, yv = data()
    one, same, fast = (
        wrapped(),
        wrapped(step_length_meta_lr=1e-3),
        wrapped(step_length_meta_lr=1e-2),
    )
    assert len(one.meta_optimizer.param_groups) == 1
    assert [(len(g["params"]), g["lr"]) for g in fast.meta_optimizer.param_groups] == [
        (len(fast.meta_params) - 1, 1e-3),
        (1, 1e-2),
    ]
    assert fast.meta_optimizer.param_groups[1]["params"][0] is fast.step_length.log_factor
    for opt in (one, same, fast):
        opt.step(x, y, xv, yv)
    for p, q, f in zip(one.meta_params[:-1], same.meta_params[:-1], fast.meta_params[:-1],
                       strict=True):  # fmt: skip
        assert torch.equal(p, q) and torch.equal(p, f)  # ϕ: the same step, at η
    assert one.step_factor == same.step_factor
    assert abs(math.log(fast.step_factor)) == pytest.approx(
        10 * abs(math.log(one.step_factor)), rel=1e-6
    )  # Adam's first step is ±rate: a moved 10× as far
    for _ in range(3):
        for opt in (one, same):
            opt.step(x, y, xv, yv)
    for p, q in zip(one.model.parameters(), same.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_step_length_rate_is_checked_before_anything_and_checkpointed():
    model = mlp().double()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    task = adaloss.Classification(3)
    with pytest.raises(
        ValueError, match="step_length_meta_lr is the learned step length's rate: it needs learn_lr"
    ):
        adaloss.MetaLossOptimizer(model, base, task, learn_lr=False, step_length_meta_lr=0.1)
    for wrong in (0, -1e-3, float("inf"), float("nan"), True, "0.1"):
        with pytest.raises(
            ValueError, match="step_length_meta_lr must be None or a finite number > 0"
        ):
            adaloss.MetaLossOptimizer(model, base, task, step_length_meta_lr=wrong)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    assert not base.state
    assert "step_length_meta_lr=0.1" in repr(wrapped(step_length_meta_lr=0.1))
    assert wrapped(step_length_meta_lr=False).recipe.step_length_meta_lr is None
    x, y, xv, yv = data()
    opt = wrapped(step_length_meta_lr=0.1)
    for _ in range(2):
        opt.step(x, y, xv, yv)
    state = copy.deepcopy(opt.state_dict())
    fresh = wrapped(step_length_meta_lr=0.1)
    fresh.model.load_state_dict(opt.model.state_dict())  # θ is the model's to save
    fresh.load_state_dict(state)
    for o in (opt, fresh):
        o.step(x, y, xv, yv)
    assert fresh.step_factor == opt.step_factor
    with pytest.raises(ValueError, match="param_groups|group"):
        wrapped().load_state_dict(state)  # one Adam group here, two saved
