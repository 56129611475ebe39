"""check_share: validation examples kept from the meta-objective, by content, for the checks."""

from __future__ import annotations

import pytest
import torch
from conftest import mlp

import adaloss
import adaloss.handover
import adaloss.holdout
from adaloss.holdout import ContentSplit


def opt_with(**kwargs):
    torch.manual_seed(0)
    model = mlp().double()
    return adaloss.MetaLossOptimizer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        adaloss.Classification(3),
        **kwargs,
    )


def batch(rows=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 6, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (rows,), generator=g)


def test_each_example_is_on_the_same_side_in_any_batch_order_dtype_or_company():
    torch.manual_seed(0)
    split = ContentSplit(0.5)
    x = torch.randn(64, 3, 4)
    side = split.check_side(x)
    order = torch.randperm(64)
    assert torch.equal(split.check_side(x[order]), side[order])
    assert torch.equal(split.check_side(x[:7]), side[:7])
    assert torch.equal(split.check_side(torch.cat([torch.randn(9, 3, 4), x]))[9:], side)
    assert torch.equal(split.check_side(x.double()), side)  # float32 values are exact in float64
    assert 0 < int(side.sum()) < 64


def test_large_examples_hash_a_few_columns_at_a_time_to_the_same_keys(monkeypatch):
    # The hash's 64-bit temporaries are bounded by CHUNK_VALUES; the keys must not depend on it
    # (nor, through the chunk width, on how many examples share the batch).
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, 5)
    whole = ContentSplit(0.5).keys(x)
    monkeypatch.setattr(adaloss.holdout, "CHUNK_VALUES", 13)  # 2 columns a chunk for 6 rows
    assert torch.equal(ContentSplit(0.5).keys(x), whole)
    assert torch.equal(torch.cat([ContentSplit(0.5).keys(x[i : i + 1]) for i in range(6)]), whole)
    monkeypatch.setattr(adaloss.holdout, "CHUNK_VALUES", 1)  # one column a chunk
    assert torch.equal(ContentSplit(0.5).keys(x), whole)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.randn(20_000, 10, generator=g),
        lambda g: torch.randn(20_000, 10, generator=g) * 1e-7,  # tiny features
        lambda g: torch.randn(20_000, 5, generator=g) * 1e6 + 1e7,  # huge, far from 0
        lambda g: torch.randint(0, 17, (20_000, 64), generator=g).float(),  # pixel counts
        lambda g: torch.randint(0, 1000, (20_000, 3), generator=g),  # token ids
    ],
)
def test_the_share_holds_whatever_the_scale_or_dtype_of_the_data(make):
    x = make(torch.Generator().manual_seed(0))
    for share in (0.1, 0.5):
        kept = ContentSplit(share).check_side(x).double().mean().item()
        assert abs(kept - share) < 0.02, (share, kept)


def test_a_bad_share_or_one_without_windows_is_refused():
    for share in (0, 1, 1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"check_share must be None or a number in \(0, 1\)"):
            opt_with(handover=2, check_every=3, check_share=share)
    with pytest.raises(ValueError, match="pass check_every=N"):
        opt_with(handover=2, check_every=False, check_share=0.5)
    with pytest.raises(ValueError, match="pass check_every=N"):
        adaloss.recipes.Recipe("r", start="warm_start", meta_lr=1e-3, guard=2.0, check_share=0.5)


def test_the_meta_objective_never_sees_the_examples_the_checks_keep():
    shared = opt_with(handover=2, check_every=3, check_share=0.5)
    whole = opt_with(handover=2, check_every=3)
    (x, y), (xv, yv) = batch(), batch(32, seed=2)
    meta = ~shared.split.check_side(xv)
    assert 0 < int(meta.sum()) < 32
    got = shared.meta_gradient(x, y, xv, yv)
    expected = whole.meta_gradient(x, y, xv[meta], yv[meta])
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)
    # and a step moves ϕ as a step on the meta-objective's part alone does
    shared.step(x, y, xv, yv)
    whole.step(x, y, xv[meta], yv[meta])
    for p, q in zip(shared.meta_params, whole.meta_params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_the_windows_judge_on_the_kept_examples_alone(monkeypatch):
    opt = opt_with(handover=2, check_every=3, check_share=0.5)
    seen = []
    real = adaloss.handover.check_error
    monkeypatch.setattr(
        adaloss.handover, "check_error", lambda m, t, x, y: seen.append(x) or real(m, t, x, y)
    )
    (x, y), (xv, yv) = batch(), batch(32, seed=2)
    opt.step(x, y, xv, yv)
    kept = opt.split.check_side(xv)
    assert len(seen) == 2  # the model's and the twin's errors
    for rows in seen:
        assert torch.equal(rows, xv[kept])
    assert opt.window.examples == int(kept.sum()) and opt.window.batches == 1


def test_a_batch_with_nothing_left_for_the_meta_objective_steps_theta_but_not_phi():
    opt = opt_with(handover=2, check_every=3, check_share=0.5)
    (x, y), (xv, yv) = batch(), batch(64, seed=3)
    kept = opt.split.check_side(xv)
    xv, yv = xv[kept][:1], yv[kept][:1]  # one example, kept for the checks
    opt.step(x, y, xv, yv)  # the warm start happens on the first step; then compare
    phi = [p.detach().clone() for p in opt.meta_params]
    theta = [p.detach().clone() for p in opt.model.parameters()]
    result = opt.step(x, y, xv, yv)
    assert not result.meta_updated and opt.steps == 2
    assert all(torch.equal(p, q) for p, q in zip(opt.meta_params, phi, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(opt.model.parameters(), theta, strict=True))
    assert opt.window.examples == 2  # the checks got it both times
    with pytest.raises(ValueError, match="check_share keeps every example of x_val"):
        opt.meta_gradient(x, y, xv, yv)


def test_the_recipe_carries_the_share_and_false_turns_it_off():
    recipe = adaloss.recipes.Recipe(
        "shared", start="warm_start", meta_lr=1e-3, guard=2.0, handover=5, check_every=3,
        check_share=0.25,
    )  # fmt: skip
    assert opt_with(recipe=recipe).split.share == 0.25
    assert opt_with(recipe=recipe, check_share=False).split is None
    assert opt_with(recipe=recipe, check_every=False).split is None  # the share goes with windows
    assert opt_with(recipe=recipe, handover=False).split is None
    assert opt_with().split is None  # the default recipe keeps none (not screened yet)
