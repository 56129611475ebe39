"""The one benchmark training step (adaloss.bench.step) shared by `adaloss run` and `speed`."""

from __future__ import annotations

import torch

import adaloss
from adaloss.bench.step import training_step


def _setup(meta: bool):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    task = adaloss.Classification(2)
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = adaloss.MetaLossOptimizer(model, base, task) if meta else None
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    return model, task, base, opt, (x, y, torch.randn(8, 3), torch.randint(0, 2, (8,)))


def test_plain_step_updates_and_clears_gradients():
    model, task, base, opt, batch = _setup(meta=False)
    before = [p.detach().clone() for p in model.parameters()]
    assert training_step(model, task, base, opt, batch[:2]) is True
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_plain_step_rejects_a_non_finite_loss_and_leaves_theta_alone():
    model, task, base, opt, (x, y, *_) = _setup(meta=False)
    before = [p.detach().clone() for p in model.parameters()]
    x[0, 0] = float("nan")
    assert training_step(model, task, base, opt, (x, y)) is False
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_meta_step_goes_through_the_meta_optimizer():
    model, task, base, opt, batch = _setup(meta=True)
    assert training_step(model, task, base, opt, batch) is True
    assert opt.steps == 1 and opt.skipped_steps == 0
