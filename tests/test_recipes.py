"""The default recipe: presets, the task-loss warm start, the divergence guard."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import replace

import pytest
import torch
from conftest import batches, make_model, paper_optimizer
from torch.nn import functional as F

import adaloss
from adaloss.bench.config import LOSSES
from adaloss.guard import TrustRegionGuard
from adaloss.objective import evaluate
from adaloss.recipes import RECIPES, Recipe, get_recipe
from adaloss.warmstart import gradient_mismatch, target_range, warm_start

TASKS = {
    "regression": adaloss.Regression(1),
    "classification": adaloss.Classification(10),
    "binary": adaloss.BinaryClassification(),
}
# Relative mismatch ‖weight·ℓ' − goal‖/‖goal‖ the fit reaches on the task's grid.
TOLERANCE = {"regression": 0.01, "classification": 0.08, "binary": 0.15}
# MonotoneLossNetwork's slope for a non-target class vanishes at p = 0, where cross-entropy's
# softmax gradient wants a constant: it fits classification less closely (measured 0.12, 0.15).
MONOTONE_TOLERANCE = {"regression": 0.01, "classification": 0.15, "binary": 0.2}


def _regression_optimizer(lr: float = 1e-4) -> adaloss.MetaLossOptimizer:
    """The default recipe on a float64 MLP with one regression output."""
    model = make_model("mlp")
    model[-1] = torch.nn.Linear(model[-1].in_features, 1).double()
    return adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=lr),
                                     adaloss.Regression(1))  # fmt: skip


@contextlib.contextmanager
def _failing_after_the_warm_start(opt):
    """The learned loss raises in the step's differentiable pass (after a lazy warm start,
    which runs without grad), then works again."""
    original = opt.loss.forward

    def boom(*args):
        if torch.is_grad_enabled():
            raise RuntimeError("injected")
        return original(*args)

    opt.loss.forward = boom
    try:
        with pytest.raises(RuntimeError, match="injected"):
            yield
    finally:
        del opt.loss.forward


def test_presets():
    paper, default = RECIPES["paper"], RECIPES["default"]
    assert (paper.start, paper.meta_lr, paper.guard) == ("offline", 1e-5, None)
    assert (paper.offline_steps, paper.offline_meta_lr, paper.inner_steps) == (2500, 1e-3, 1)
    assert (default.start, default.guard) == ("warm_start", 2.0)
    assert (paper.horizon, default.horizon) == ("step", "momentum")
    assert (default.handover, default.check_every) == (5, 200)
    unchecked = RECIPES["unchecked"]
    assert unchecked == replace(
        default,
        name="unchecked",
        handover=None,
        check_every=None,
        on_regression=(),
        on_classification=(),
    )
    assert default.on_regression == (("loss", "monotone"), ("check_share", 0.5))
    assert default.on_classification == (("learn_lr", True),)
    assert RECIPES["step"] == replace(unchecked, name="step", horizon="step")
    assert get_recipe("paper") is paper and get_recipe(default) is default
    with pytest.raises(ValueError, match="unknown recipe 'magic'; choose from default, paper"):
        get_recipe("magic")
    with pytest.raises(ValueError, match="start must be one of"):
        Recipe("x", start="later", meta_lr=1e-3, guard=None)


def test_optimizer_takes_the_recipe_and_overrides(float64):
    model = make_model("mlp")
    opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                    adaloss.Classification(3))  # fmt: skip
    resolved = replace(RECIPES["default"], learn_lr=True, on_regression=(), on_classification=())
    assert opt.recipe == resolved  # resolved for the task: a classification's learn_lr
    assert opt.meta_optimizer.param_groups[0]["lr"] == RECIPES["default"].meta_lr
    assert opt.guard.bound == RECIPES["default"].guard
    opt = paper_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                          adaloss.Classification(3), meta_lr=1e-2, guard=3.0)  # fmt: skip
    assert opt.recipe.start == "offline" and opt.recipe.meta_lr == 1e-2 and opt.guard.bound == 3
    off = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                    adaloss.Classification(3), guard=False)  # fmt: skip
    assert off.guard is None and off.recipe.guard is None
    for bad in (True, 0, -1.0, "2"):
        with pytest.raises(ValueError, match="guard must be a bound > 0, None or False"):
            adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                      adaloss.Classification(3), guard=bad)  # fmt: skip


def test_the_default_on_regression_is_the_monotone_loss_with_half_kept_for_the_checks():
    """The pair goes as a unit: a user who passes either half gets neither from the recipe."""
    model = make_model("mlp")

    def built(task=None, **options):
        task = adaloss.Regression(3) if task is None else task
        opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                        task, **options)  # fmt: skip
        return type(opt.loss), opt.recipe.check_share, opt.split is not None

    assert built() == (adaloss.MonotoneLossNetwork, 0.5, True)
    assert built(adaloss.Classification(3)) == (adaloss.LossNetwork, None, False)
    assert built(adaloss.BinaryClassification()) == (adaloss.LossNetwork, None, False)
    assert built(loss=adaloss.LossNetwork()) == (adaloss.LossNetwork, None, False)
    assert built(check_share=False) == (adaloss.LossNetwork, None, False)
    assert built(check_share=0.25) == (adaloss.LossNetwork, 0.25, True)
    assert built(handover=False) == (adaloss.MonotoneLossNetwork, None, False)  # no windows
    assert built(adaloss.Classification(3), handover=False) == (adaloss.LossNetwork, None, False)
    for name in ("unchecked", "step", "paper"):
        assert built(recipe=name)[:2] == (adaloss.LossNetwork, None)
    assert "check_share=0.5" in repr(
        adaloss.MetaLossOptimizer(
            model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Regression(3)
        )  # fmt: skip
    )


def test_the_regression_default_is_the_pair_passed_by_hand_bit_for_bit(float64):
    """Given nothing, a Regression run is the run with the monotone loss and the share
    passed explicitly: the same ϕ_0, the same split, the same steps."""
    ends = []
    for options in ({}, {"loss": "monotone", "check_share": 0.5}):
        torch.manual_seed(0)
        model = make_model("mlp")
        if options:
            options = {**options, "loss": adaloss.MonotoneLossNetwork()}
        opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                        adaloss.Regression(3), **options)  # fmt: skip
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            x, xv = torch.randn(2, 8, 6, generator=g)  # float64: the fixture's default dtype
            y, yv = torch.rand(2, 8, 3, generator=g)
            opt.step(x, y, xv, yv)
        learned = [*model.parameters(), *opt.loss.parameters()]
        ends.append(torch.cat([p.detach().flatten() for p in learned]))
    assert torch.equal(ends[0], ends[1])


def test_the_default_on_classification_learns_the_step_length_unless_told_otherwise():
    model = make_model("mlp")

    def learns(task, **options):
        opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                        task, **options)  # fmt: skip
        return opt.recipe.learn_lr, opt.step_length is not None

    assert learns(adaloss.Classification(3)) == (True, True)
    assert learns(adaloss.BinaryClassification()) == (True, True)
    assert learns(adaloss.Regression(3)) == (False, False)
    assert learns(adaloss.Classification(3), learn_lr=False) == (False, False)
    assert learns(adaloss.Classification(3), learn_lr="longer") == ("longer", True)
    assert learns(adaloss.Regression(3), learn_lr=True) == (True, True)  # with the pair
    # a meta-optimizer of one's own cannot hold the step length: the recipe's is not applied
    loss = adaloss.LossNetwork()
    own = torch.optim.Adam(loss.parameters())
    assert learns(adaloss.Classification(3), loss=loss, meta_optimizer=own) == (False, False)


def test_a_recipe_refuses_an_unknown_loss_or_regression_setting():
    with pytest.raises(ValueError, match=r"loss must be one of \('network', 'monotone'\)"):
        replace(RECIPES["default"], loss="magic")
    with pytest.raises(ValueError, match=r"on_regression sets only .* not \['guard'\]"):
        replace(RECIPES["default"], on_regression=(("guard", 1.0),))
    with pytest.raises(ValueError, match=r"on_classification sets only .* not \['meta_lr'\]"):
        replace(RECIPES["default"], on_classification=(("meta_lr", 1.0),))
    with pytest.raises(ValueError, match="check_share"):  # a share needs the recipe's windows
        replace(RECIPES["unchecked"], on_regression=(("check_share", 0.5),))


def test_repr_names_the_recipe_and_each_option_that_is_on():
    model = make_model("mlp")

    def shown(**options) -> str:
        return repr(adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                              adaloss.Classification(3), **options))  # fmt: skip

    plain = shown(learn_lr=False)
    assert "recipe='default', guard=2.0, patience=None" in plain and "handover=5" in plain
    assert not any(k in plain for k in ("keep_fit", "learn_lr", "check_share", "lr_horizon"))
    assert shown().endswith("check_every=200, learn_lr=True)")  # the default's, on classification
    assert shown(keep_fit="agree").endswith("check_every=200, learn_lr=True, keep_fit='agree')")
    both = shown(learn_lr="longer", keep_fit=True, check_share=0.5)
    assert both.endswith("check_share=0.5, learn_lr='longer', keep_fit=True)")


@pytest.mark.parametrize("representation", ["network", "anchored", "monotone"])
@pytest.mark.parametrize("kind", list(TASKS))
def test_warm_start_matches_the_task_loss_gradient_on_a_grid(kind, representation):
    """The fitted slope reproduces the task loss's output gradient on a grid finer than the
    fit's own (so this checks the function, not just the points it was fitted on); also for
    the anchored network, whose stationary point at the target the fit cannot move, and the
    monotone one, whose slope keeps the sign of p − t."""
    task = TASKS[kind]
    torch.manual_seed(0)
    loss = LOSSES[representation]()
    if representation == "monotone":  # ϕ_0 ≈ the squared error by design: start it elsewhere
        with torch.no_grad():  # random strengths per side and target, ramps as constructed
            loss.coefficients[-1].weight.normal_()
            loss.coefficients[-1].bias.normal_(mean=1.0)
    before = float(gradient_mismatch(loss, task, points=64))
    assert before > 0.5  # a random ϕ is nowhere near
    warm_start(loss, task)
    tolerance = MONOTONE_TOLERANCE if representation == "monotone" else TOLERANCE
    assert float(gradient_mismatch(loss, task, points=64)) < tolerance[kind]


def _output_gradients(loss, task, out, y):
    f = out.detach().requires_grad_()
    (learned,) = torch.autograd.grad(loss(*task.learned_loss_inputs(f, y)), f)
    f = out.detach().requires_grad_()
    (reference,) = torch.autograd.grad(task.loss(f, y), f)
    return learned, reference


def test_warm_started_loss_moves_logits_like_cross_entropy():
    """On real softmax outputs (not the fit's grid), through the softmax's coupling."""
    torch.manual_seed(0)
    task, loss = adaloss.Classification(10), adaloss.LossNetwork()
    warm_start(loss, task)
    out, y = 2 * torch.randn(512, 10), torch.randint(0, 10, (512,))
    learned, reference = _output_gradients(loss, task, out, y)
    cosine = F.cosine_similarity(learned.flatten(), reference.flatten(), dim=0)
    assert cosine > 0.9  # measured 0.944: the fit is loosest where the target p is small
    assert 0.8 < learned.norm() / reference.norm() < 1.25


def test_regression_warm_start_reads_the_target_range(float64):
    targets = [torch.tensor([[3.0], [5.0]]), torch.tensor([[4.0]])]
    assert target_range(targets) == (2.0, 6.0)
    opt = _regression_optimizer(lr=0.01)
    x = torch.randn(32, 6, dtype=torch.float64)
    y = 3 + 2 * torch.rand(32, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="steps set the offline phase of Algorithm 1"):
        opt.initialize([(x, y)], steps=10)
    assert not opt.started
    assert opt.initialize([(x, y)]) == [] and opt.started
    # ℓ' = 2(p − t) around targets near 4, far outside the default [−0.5, 1.5] grid
    p = torch.tensor([[3.0], [4.5], [5.5]], dtype=torch.float64, requires_grad=True)
    t = torch.full_like(p, 4.0)
    (slope,) = torch.autograd.grad(opt.loss.pointwise(p, t).sum(), p)
    torch.testing.assert_close(slope, 2 * (p - t).detach(), atol=0.1, rtol=0.05)


@pytest.mark.parametrize("representation", ["network", "anchored", "monotone"])
@pytest.mark.parametrize("value_range", [(-981.5, 1092.5), (999.5, 1001.5), (-50.0, 50.0)])
def test_warm_start_fits_targets_far_from_unit_scale(representation, value_range):
    """Unscaled targets (std ≈ 170 in scripts/outside_data_probe.py): the network saw them
    raw and fitted squared error to 0.33–0.45 relative mismatch; normalized, as on [0, 1]."""
    task = TASKS["regression"]
    torch.manual_seed(0)
    loss = LOSSES[representation]()
    fit = warm_start(loss, task, value_range)
    assert fit < TOLERANCE["regression"]
    assert float(gradient_mismatch(loss, task, value_range, points=64)) < 2 * max(fit, 0.005)
    lo, hi = value_range  # on the task's scale: ℓ' = 2(p − t) inside the range
    p = torch.linspace(lo + (hi - lo) / 4, hi - (hi - lo) / 4, 9, requires_grad=True)[:, None]
    t = torch.full_like(p, (lo + hi) / 2)
    (slope,) = torch.autograd.grad(loss.pointwise(p, t).sum(), p)
    scale = 2 * (p - t).detach().abs().max()
    assert (slope - 2 * (p - t).detach()).abs().max() < 0.05 * scale


def test_input_normalization_is_exact_and_the_identity_on_unit_scale():
    loss = adaloss.LossNetwork()
    for span in [(0.0, 1.0), (0.02, 0.97), (0.0, 0.8)]:
        loss.normalize_inputs(target_range([torch.tensor(span)]))
        assert (loss.input_center, loss.input_scale) == (0.0, 1.0)
    loss.normalize_inputs((-981.5, 1092.5))
    assert (loss.input_center, loss.input_scale) == (0.0, 1024.0)
    loss.normalize_inputs((999.5, 1001.5))
    assert (loss.input_center, loss.input_scale) == (1000.0, 1.0)
    p, t = torch.randn(5, 3) + 1000, torch.randn(5, 3) + 1000
    torch.testing.assert_close(loss.pointwise(p, t), loss._pointwise(p - 1000, t - 1000))
    for bad in [(1.0, 1.0), (2.0, 1.0), (0.0, float("inf"))]:
        with pytest.raises(ValueError, match="finite with lo < hi"):
            loss.normalize_inputs(bad)


def test_the_normalization_travels_with_the_loss_and_the_optimizer(float64):
    loss = adaloss.LossNetwork().double()
    loss.normalize_inputs((-981.5, 1092.5))
    copy_ = adaloss.LossNetwork().double()
    copy_.load_state_dict(loss.state_dict())
    assert (copy_.input_center, copy_.input_scale) == (0.0, 1024.0)
    old = {k: v for k, v in loss.state_dict().items() if k != "_extra_state"}
    copy_.load_state_dict(old)  # saved before the normalization existed: the identity
    assert (copy_.input_center, copy_.input_scale) == (0.0, 1.0)
    with pytest.raises(ValueError, match="must be finite"):
        copy_.load_state_dict({**old, "_extra_state": {"input_center": 0.0, "input_scale": -1.0}})

    opt = _regression_optimizer()
    x = torch.randn(32, 6, dtype=torch.float64)
    opt.initialize([(x, 300 * torch.randn(32, 1, dtype=torch.float64))])
    assert opt.loss.input_scale > 100
    state = opt.state_dict()
    resumed = _regression_optimizer()
    resumed.load_state_dict(state)
    assert (resumed.loss.input_center, resumed.loss.input_scale) == (
        opt.loss.input_center, opt.loss.input_scale,
    )  # fmt: skip
    bad = {**state, "loss_inputs": {"input_center": float("nan"), "input_scale": 1.0}}
    fresh = _regression_optimizer()
    with pytest.raises(ValueError, match="must be finite"):
        fresh.load_state_dict(bad)
    assert (fresh.loss.input_center, fresh.loss.input_scale) == (0.0, 1.0)
    fresh.load_state_dict({k: v for k, v in state.items() if k != "loss_inputs"})
    assert (fresh.loss.input_center, fresh.loss.input_scale) == (0.0, 1.0)


def test_a_failing_first_step_leaves_the_input_normalization_as_it_was(float64):
    opt = _regression_optimizer()
    x = torch.randn(16, 6, dtype=torch.float64)
    y = 300 * torch.randn(16, 1, dtype=torch.float64)  # the warm start would set s = 512
    with _failing_after_the_warm_start(opt):
        opt.step(x, y, x, y)
    assert not opt.started
    assert (opt.loss.input_center, opt.loss.input_scale) == (0.0, 1.0)
    opt.step(x, y, x, y)
    assert opt.started and opt.loss.input_scale > 100


def test_first_step_warm_starts_and_a_failing_first_step_changes_nothing(float64):
    model = make_model("mlp")
    opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                    adaloss.Classification(3))  # fmt: skip
    phi = [p.detach().clone() for p in opt.loss.parameters()]
    theta = [p.detach().clone() for p in model.parameters()]
    (x, y), (xv, yv) = batches((6,), 2)
    with pytest.raises(ValueError, match="x_val must have a non-empty batch"):
        opt.step(x, y, xv[:0], yv[:0])
    assert not opt.started
    with _failing_after_the_warm_start(opt):
        opt.step(x, y, xv, yv)
    assert not opt.started
    assert all(torch.equal(a, b) for a, b in zip(phi, opt.loss.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(theta, model.parameters(), strict=True))
    twin = copy.deepcopy(opt.loss)
    warm_start(twin, adaloss.Classification(3))
    opt.step(x, y, xv, yv)  # now it runs: the warm start, then the step
    assert opt.started and opt.steps == 1
    state = opt.state_dict()
    assert state["started"] and "guarded_steps" in state


def test_default_recipe_trains_like_the_baseline_at_first(float64):
    """Warm-started, the learned loss's first base step is (nearly) cross-entropy's."""
    torch.manual_seed(0)
    model, twin = make_model("mlp"), make_model("mlp")
    twin.load_state_dict(model.state_dict())
    opt = adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                    adaloss.Classification(3), meta_lr=0.0)  # fmt: skip
    base = torch.optim.SGD(twin.parameters(), lr=0.1)
    (x, y), (xv, yv) = batches((6,), 2)
    opt.step(x, y, xv, yv)
    F.cross_entropy(twin(x), y).backward()
    base.step()
    start = [p.detach() for p in make_model("mlp").parameters()]
    moved = torch.cat(
        [(a.detach() - s).flatten() for a, s in zip(model.parameters(), start, strict=True)]
    )
    ref = torch.cat(
        [(b.detach() - s).flatten() for b, s in zip(twin.parameters(), start, strict=True)]
    )
    assert F.cosine_similarity(moved, ref, dim=0) > 0.95
    assert 0.7 < moved.norm() / ref.norm() < 1.4


def _guard_weights(guard, loss, task, out, y):
    """(s, c) as a step computes them: h and g from one pass, then the guard's weights."""
    objective = evaluate(loss, task, out, y, weights=guard.weights)
    return objective.loss_scale, objective.task_weight


def test_objective_reuses_h_and_combines_the_weights():
    """The step's one pass gives h = ∂M_ϕ/∂f, M̃ = s·M_ϕ + c·L_T and ∂M̃/∂f = s·h + c·g,
    the same as differentiating M̃ itself with s and c held constant."""
    task = adaloss.Regression(1)
    out, y = torch.randn(32, 1, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    torch.manual_seed(0)
    loss = adaloss.LossNetwork().double()
    objective = evaluate(loss, task, out, y, weights=TrustRegionGuard(0.5).weights)
    s, c = objective.loss_scale, objective.task_weight
    assert float(s) < 1 or float(c) > 0  # the guard acted, so both terms matter
    f = out.clone().requires_grad_()
    combined = s * loss(f, y) + c * task.loss(f, y)
    (expected,) = torch.autograd.grad(combined, f)
    torch.testing.assert_close(objective.output_grad, expected)
    torch.testing.assert_close(objective.value, combined.detach())
    (h,) = torch.autograd.grad(loss(f, y), f)
    torch.testing.assert_close(objective.h, h)


def test_guard_bounds_the_learned_gradient_scale():
    task = adaloss.Classification(5)
    out, y = torch.randn(16, 5), torch.randint(0, 5, (16,))

    class Scaled(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, p, t):  # factor × cross-entropy on probabilities
            return -self.factor * (t * p.clamp_min(1e-12).log()).sum(1).mean()

    guard = TrustRegionGuard(2.0)
    for free in (1.0, 1.9, 0.6):  # within [1/κ, κ] of the task loss: left alone
        scale, weight = _guard_weights(guard, Scaled(free), task, out, y)
        assert float(scale) == 1.0 and float(weight) == 0.0
    scale, weight = _guard_weights(guard, Scaled(50.0), task, out, y)
    torch.testing.assert_close(scale, torch.tensor(2.0 / 50.0))
    assert float(weight) == 0.0
    learned, reference = _output_gradients(Scaled(50.0), task, out, y)
    torch.testing.assert_close((scale * learned).norm(), 2 * reference.norm())
    # too weak (0.1× cross-entropy): the task loss makes up the descent to 1/κ of its own
    scale, weight = _guard_weights(guard, Scaled(0.1), task, out, y)
    assert float(scale) == 1.0
    torch.testing.assert_close(weight, torch.tensor(0.4))
    with pytest.raises(ValueError, match="bound must be > 0"):
        TrustRegionGuard(0.0)


def test_guard_outvotes_a_loss_that_pushes_the_wrong_way():
    """A learned loss whose output gradient opposes the task loss's (a minimum far from the
    target, the paper recipe's regression failure) gets enough task loss mixed in that the
    step still descends the task loss at 1/κ of its own rate."""
    task = adaloss.Regression(1)
    out, y = torch.randn(32, 1), torch.randn(32, 1)

    class Wrong(torch.nn.Module):
        def forward(self, p, t):
            return -((p - t) ** 2).mean()  # ascends the squared error

    guard = TrustRegionGuard(2.0)
    scale, weight = _guard_weights(guard, Wrong(), task, out, y)
    assert float(scale) == 1.0
    torch.testing.assert_close(weight, torch.tensor(1.5))  # −1 + c = 1/2
    f = out.clone().requires_grad_()
    combined = scale * Wrong()(f, y) + weight * task.loss(f, y)
    (h,) = torch.autograd.grad(combined, f)
    (g,) = torch.autograd.grad(task.loss(f, y), f)
    torch.testing.assert_close((h * g).sum(), (g * g).sum() / 2)


def _steep_loss() -> torch.nn.Module:
    """A learned loss with 1000× the task loss's slope: BENCHMARKS.md's digits collapse."""
    torch.manual_seed(0)
    loss = adaloss.LossNetwork()
    warm_start(loss, adaloss.Classification(3))
    with torch.no_grad():
        loss.net[-1].weight.mul_(1000.0)
    return loss


@pytest.mark.parametrize("guard", [2.0, False])
def test_guard_saves_a_run_that_a_steep_loss_breaks(guard, float64):
    """Constructed divergence: without the guard the steep loss blows the model up; with
    it every step is scaled to at most 2× the task loss's force and training proceeds."""
    torch.manual_seed(1)
    model = make_model("mlp")
    x = torch.randn(64, 6, dtype=torch.float64)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = paper_optimizer(model, torch.optim.SGD(model.parameters(), lr=1.0),
                          adaloss.Classification(3), loss=_steep_loss().double(),
                          meta_lr=0.0, guard=guard)  # fmt: skip
    start = float(F.cross_entropy(model(x), y).detach())
    for _ in range(30):
        result = opt.step(x, y, x, y)
    end = float(F.cross_entropy(model(x), y).detach())
    if guard:
        assert opt.guarded_steps == 30 and float(result.loss_scale) < 0.01
        assert float(result.task_weight) == 0.0  # steep, not wrong-way: scaling suffices
        assert end < start
    else:
        assert result.loss_scale is None and result.task_weight is None
        assert opt.guarded_steps == 0
        assert not end < 3 * start  # blown up: far worse than where it began


def test_guard_leaves_a_well_scaled_loss_alone(float64):
    model = make_model("mlp")
    loss = adaloss.LossNetwork().double()
    warm_start(loss, adaloss.Classification(3))  # close to cross-entropy: inside [1/κ, κ]
    opt = paper_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                          adaloss.Classification(3), loss=loss, guard=4.0)  # fmt: skip
    (x, y), (xv, yv) = batches((6,), 2)
    result = opt.step(x, y, xv, yv)
    assert float(result.loss_scale) == 1.0 and float(result.task_weight) == 0.0
    assert opt.guarded_steps == 0
