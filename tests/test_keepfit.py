"""``keep_fit``: ϕ's meta-gradient projected off the training batch's (adaloss.keepfit)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import OPTIMIZERS, batches, make_model, paper_optimizer

import adaloss
from adaloss.keepfit import drop_conflict, kept, project_conflict
from adaloss.recipes import with_arguments


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def inner(a, b) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b, strict=True)))


def test_projection_keeps_agreeing_gradients_and_strips_the_conflict(float64):
    fit = (torch.tensor([1.0, 0.0]), torch.tensor([[0.0]]))
    agreeing = (torch.tensor([2.0, 3.0]), torch.tensor([[-1.0]]))
    assert same(project_conflict(agreeing, fit), agreeing)
    conflicting = (torch.tensor([-2.0, 3.0]), torch.tensor([[-1.0]]))
    projected = project_conflict(conflicting, fit)
    assert torch.equal(projected[0], torch.tensor([0.0, 3.0]))
    assert torch.equal(projected[1], torch.tensor([[-1.0]]))
    assert inner(projected, fit) == 0.0
    zero = tuple(torch.zeros_like(f) for f in fit)
    assert same(project_conflict(conflicting, zero), conflicting)
    assert project_conflict((), ()) == ()


def test_agree_drops_a_conflicting_gradient_whole(float64):
    fit = (torch.tensor([1.0, 0.0]),)
    agreeing, conflicting = (torch.tensor([2.0, 3.0]),), (torch.tensor([-2.0, 3.0]),)
    assert same(drop_conflict(agreeing, fit), agreeing)
    assert same(drop_conflict(conflicting, fit), (torch.zeros(2),))
    assert same(kept(conflicting, fit, "agree"), (torch.zeros(2),))
    assert same(kept(conflicting, fit, True), project_conflict(conflicting, fit))
    assert drop_conflict((), ()) == ()


def build(opt_name: str, engine: str = "forward", keep_fit: bool | str = False):
    model = make_model("mlp")
    torch.manual_seed(7)
    loss = adaloss.LossNetwork().double()
    base = OPTIMIZERS[opt_name](model.parameters())
    task = adaloss.Classification(3)
    return paper_optimizer(model, base, task, loss=loss, hypergrad=engine, keep_fit=keep_fit)


@pytest.mark.parametrize("rule", [True, "agree"])
@pytest.mark.parametrize("engine", ["forward", "unroll"])
@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
def test_engine_applies_the_rule_to_the_validation_and_training_gradients(
    engine, opt_name, rule, float64
):
    """The engine's keep_fit gradient is the rule (``kept``) applied to the two plain ones, each
    computed by the same engine, in the same state, with keep_fit off (the training one:
    x as validation), along a keep_fit run."""
    data = batches((6,), n=12, seed=2)
    opt = build(opt_name, engine, keep_fit=rule)
    plain = replace(opt.recipe, keep_fit=False)
    conflicts = 0
    for t in range(0, 12, 2):
        (x, y), (xv, yv) = data[t], data[t + 1]
        opt.recipe, recipe = plain, opt.recipe
        validation = opt.meta_gradient(x, y, xv, yv)
        training = opt.meta_gradient(x, y, x, y)
        opt.recipe = recipe
        expected = kept(validation, training, rule)
        got = opt.meta_gradient(x, y, xv, yv)
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)
        if inner(validation, training) < 0:
            conflicts += 1
            bound = 1e-9 * max(1.0, inner(training, training))
            assert abs(inner(got, training)) < bound if rule is True else inner(got, got) == 0
        else:
            assert same(got, validation)
        opt.step(x, y, xv, yv)
    assert conflicts > 0  # the rule acted, not only the agreeing branch


@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
def test_forward_and_unroll_agree_with_keep_fit(opt_name, float64):
    data = batches((6,), n=10, seed=3)
    runs = {}
    for engine in ("forward", "unroll"):
        opt = build(opt_name, engine, keep_fit=True)
        for t in range(0, 10, 2):
            opt.step(*data[t], *data[t + 1])
        runs[engine] = torch.cat([p.detach().flatten() for p in opt.loss.parameters()])
    torch.testing.assert_close(runs["forward"], runs["unroll"], rtol=1e-8, atol=1e-12)


def test_keep_fit_with_a_learned_step_length_projects_both(float64):
    """With learn_lr, dL/da is part of the projected vector: the engines still agree."""
    data = batches((6,), n=6, seed=4)
    grads = {}
    for engine, keep_fit in (("forward", True), ("unroll", True), ("forward", False)):
        model = make_model("mlp")
        base = torch.optim.SGD(model.parameters(), lr=0.1)
        opt = adaloss.MetaLossOptimizer(
            model, base, adaloss.Classification(3), hypergrad=engine, keep_fit=keep_fit,
            learn_lr=True,
        )  # fmt: skip
        opt.step(*data[0], *data[1])
        grads[engine, keep_fit] = torch.cat(
            [g.flatten() for g in opt.meta_gradient(*data[2], *data[3])]
        )
    kept_forward = grads["forward", True]
    torch.testing.assert_close(kept_forward, grads["unroll", True], rtol=1e-8, atol=1e-12)
    # these batches conflict: the projection moved dL/da too (its last entry)
    assert abs(float(kept_forward[-1] - grads["forward", False][-1])) > 1e-3


def test_refusals():
    with pytest.raises(ValueError, match="keep_fit must be one of"):
        with_arguments("default", keep_fit="yes")
    with pytest.raises(ValueError, match="keep_fit must be one of"):
        with_arguments("default", keep_fit=1)
    with pytest.raises(ValueError, match="refuses lr_horizon"):
        with_arguments("default", learn_lr=True, lr_horizon=10, keep_fit=True)
    with pytest.raises(ValueError, match="keep_fit must be one of"):
        replace(with_arguments("default"), keep_fit=None)  # a recipe's own value: never None
    assert with_arguments("default").keep_fit is False
    assert with_arguments("default", keep_fit=True).keep_fit is True
    assert with_arguments("default", keep_fit="agree").keep_fit == "agree"
