"""Early stopping of the learned loss (adaloss.patience): when it stops, what a step is after."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import batches, make_model
from torch.nn import functional as F

import adaloss
from adaloss.patience import MetaPatience
from adaloss.recipes import Recipe


def test_the_watch_stops_only_after_patience_steps_without_a_new_low():
    falling = MetaPatience(patience=3, decay=0.0)  # decay 0: the average is the value
    assert not any(falling.observe(t, 10.0 - t) for t in range(50))
    assert falling.stopped_at is None and falling.best_step == 49

    watch = MetaPatience(patience=3, decay=0.0)
    values = [5.0, 4.0, 4.5, 4.0, 4.2]  # the low at step 1; 4.0 again is no new low
    assert [watch.observe(t, v) for t, v in enumerate(values)] == [False] * 4 + [True]
    assert (watch.best, watch.best_step, watch.stopped_at) == (4.0, 1, 4)
    assert watch.observe(5, 0.0) and watch.stopped_at == 4  # stopped stays stopped


def test_the_average_keeps_one_lucky_batch_from_stopping():
    """A falling meta-objective with one lucky low batch: the raw value's record stands for
    good and stops the watch; the moving average absorbs it and keeps finding new lows."""
    values = [1.0 - 0.01 * t for t in range(40)]
    values[2] = 0.5
    raw, averaged = MetaPatience(patience=5, decay=0.0), MetaPatience(patience=5, decay=0.9)
    for t, v in enumerate(values):
        raw.observe(t, v)
        averaged.observe(t, v)
    assert raw.stopped_at == 7 and raw.best_step == 2
    assert averaged.stopped_at is None and averaged.best_step == 39


def test_the_watch_refuses_bad_settings_and_states():
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="patience must be"):
            MetaPatience(bad)
    with pytest.raises(ValueError, match="patience must be"):
        MetaPatience(None)
    with pytest.raises(ValueError, match="decay must lie in"):
        MetaPatience(5, decay=1.0)
    with pytest.raises(ValueError, match="patience must be None or an integer"):
        Recipe("x", start="warm_start", meta_lr=1e-3, guard=None, patience=0)
    watch = MetaPatience(5)
    for state, match in (
        ([], "must be a dict"),
        ({"average": 1.0, "best": 1.0}, "lacks best_step, stopped_at"),
        ({"average": 1.0, "best": 1.0, "best_step": None, "stopped_at": None}, "best_step"),
        ({"average": 1.0, "best": 1.0, "best_step": 2, "stopped_at": 2.5}, "stopped_at"),
    ):
        with pytest.raises(ValueError, match=match):
            watch.load_state_dict(state)
    assert watch.state_dict() == MetaPatience(5).state_dict()  # nothing was loaded


def _stopping_optimizer(model, patience=4, **kwargs):
    """The default with patience, ϕ alone learned (learn_lr=False: the step length would
    stay as it was after a frozen stop, which the reference twin below does not have)."""
    return adaloss.MetaLossOptimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
        patience=patience, **{"learn_lr": False, **kwargs},
    )  # fmt: skip


def _unhelpful_run(opt, steps):
    """Steps whose meta-objective cannot improve: validation labels that contradict training's."""
    (x, y), (xv, _) = batches((6,), 2)
    xv, yv = x, (y + 1) % 3
    results = [opt.step(x, y, xv, yv) for _ in range(steps)]
    return results, (x, y, xv, yv)


def test_after_stopping_a_step_is_plain_training_on_the_task_loss(float64):
    model = make_model("mlp")
    opt = _stopping_optimizer(model)
    results, (x, y, xv, yv) = _unhelpful_run(opt, 12)
    stopped = opt.stopped_at
    assert stopped is not None and stopped < 11
    assert all(r.meta_updated for r in results[: stopped + 1])
    assert not any(r.meta_updated for r in results[stopped + 1 :])
    guarded = opt.guarded_steps
    phi = [p.detach().clone() for p in opt.loss.parameters()]
    twin = copy.deepcopy(model)
    plain = torch.optim.SGD(twin.parameters(), lr=0.1)

    def unusable(*args):
        raise AssertionError("the loss network is evaluated after the stop")

    opt.loss.forward = unusable  # a plain step does not touch it, so it cannot spoil one
    result = opt.step(x, y, xv, yv)
    del opt.loss.forward
    task_loss = F.cross_entropy(twin(x), y)
    task_loss.backward()
    plain.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(phi, opt.loss.parameters(), strict=True))
    assert (float(result.loss_scale), float(result.task_weight)) == (0.0, 1.0)
    torch.testing.assert_close(result.learned_loss, task_loss.detach())  # what it trained on
    assert result.task_loss is None and opt.guarded_steps == guarded  # not the guard's doing


def test_frozen_after_stop_keeps_training_on_the_learned_loss_as_it_was(float64):
    model = make_model("mlp")
    opt = _stopping_optimizer(model, after_stop="frozen")
    _, (x, y, xv, yv) = _unhelpful_run(opt, 12)
    assert opt.stopped_at is not None and "after_stop='frozen'" in repr(opt)
    phi = [p.detach().clone() for p in opt.loss.parameters()]
    twin_model = copy.deepcopy(model)
    twin = adaloss.MetaLossOptimizer(
        twin_model, torch.optim.SGD(twin_model.parameters(), lr=0.1), adaloss.Classification(3),
        loss=copy.deepcopy(opt.loss), online=False,
    )  # fmt: skip
    twin.started = True  # ϕ as it is: no warm start
    result, reference = opt.step(x, y, xv, yv), twin.step(x, y, xv, yv)
    assert not result.meta_updated and result.task_loss is None
    assert all(torch.equal(a, b) for a, b in zip(phi, opt.loss.parameters(), strict=True))
    for a, b in zip(model.parameters(), twin_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)  # a guarded step on M_ϕ
    torch.testing.assert_close(result.loss_scale, reference.loss_scale)
    with pytest.raises(ValueError, match="after_stop must be one of"):
        _stopping_optimizer(make_model("mlp"), after_stop="baseline")


def test_without_patience_the_same_run_adapts_to_the_end(float64):
    opt = _stopping_optimizer(make_model("mlp"), patience=False)
    results, _ = _unhelpful_run(opt, 12)
    assert opt.patience is None and opt.stopped_at is None
    assert all(r.meta_updated for r in results)
    assert "patience=None" in repr(opt)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="patience must be None or an integer"):
            _stopping_optimizer(make_model("mlp"), patience=bad)


def test_checkpoints_carry_the_watch_and_a_bad_one_changes_nothing(float64):
    opt = _stopping_optimizer(make_model("mlp"), patience=50)
    _unhelpful_run(opt, 6)
    state = opt.state_dict()
    assert state["patience"]["stopped_at"] is None and state["patience"]["average"] is not None

    resumed = _stopping_optimizer(make_model("mlp"), patience=50)
    resumed.load_state_dict(state)
    assert resumed.patience.state_dict() == opt.patience.state_dict()
    assert resumed.patience is not opt.patience

    bad = {**state, "patience": {**state["patience"], "best_step": "three"}}
    fresh = _stopping_optimizer(make_model("mlp", seed=1), patience=50)
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="best_step must be an int"):
        fresh.load_state_dict(bad)
    after = fresh.state_dict()
    assert after["steps"] == before["steps"] == 0 and after["patience"] == before["patience"]
    assert all(
        torch.equal(a, b) for a, b in zip(before["meta_params"], after["meta_params"], strict=True)
    )

    older = {k: v for k, v in state.items() if k != "patience"}  # a checkpoint from before
    fresh.load_state_dict(older)
    assert fresh.steps == 6 and fresh.patience.state_dict() == MetaPatience(50).state_dict()
