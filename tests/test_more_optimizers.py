"""RMSprop, Adagrad, Adadelta, Adamax, RAdam and NAdam as base optimizers (issue 14).

Each test runs every optimizer (and its key options) on a small float64 MLP:
with ϕ fixed the wrapper's base steps are torch's own, alternating meta steps
(the differentiable update) with plain steps (torch's kernel) so the state
hand-over in both directions is checked; both hypergradient engines agree; a
scheduler's learning rate reaches the step; checkpoints continue the run.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import batches, make_model, paper_optimizer
from torch import nn

import adaloss

CONFIGS = {
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-2),
    "rmsprop_momentum": lambda p: torch.optim.RMSprop(
        p, lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.9
    ),
    "rmsprop_centered": lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.5, centered=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
    "adagrad_options": lambda p: torch.optim.Adagrad(
        p, lr=0.1, lr_decay=0.1, weight_decay=1e-2, initial_accumulator_value=0.1, eps=1e-6
    ),
    "adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.8, eps=1e-5, weight_decay=1e-2),
    "adamax": lambda p: torch.optim.Adamax(
        p, lr=1e-2, betas=(0.8, 0.9), eps=1e-6, weight_decay=1e-2
    ),
    # betas[1] = 0.99: the rectified branch (rho_t > 5) starts at step 6 of 8.
    "radam": lambda p: torch.optim.RAdam(p, lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-2),
    "radam_decoupled": lambda p: torch.optim.RAdam(
        p, lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=1e-1, decoupled_weight_decay=True
    ),
    "nadam": lambda p: torch.optim.NAdam(p, lr=1e-2, weight_decay=1e-2, momentum_decay=1e-2),
    "nadam_decoupled": lambda p: torch.optim.NAdam(
        p, lr=1e-2, betas=(0.8, 0.9), eps=1e-6, weight_decay=1e-1, decoupled_weight_decay=True
    ),
    # The refactored TorchOpt paths of the optimizers supported before.
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1),
}
STEPS = 8
TOL = 1e-10


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300))


def build(name: str, meta_lr: float = 0.0, **kwargs):
    model = make_model("mlp")
    torch.manual_seed(7)
    loss = adaloss.LossNetwork().double()
    opt = paper_optimizer(
        model, CONFIGS[name](model.parameters()), adaloss.Classification(3), loss=loss,
        meta_lr=meta_lr, **kwargs,
    )  # fmt: skip
    return model, opt


def data(n: int = STEPS):
    return batches((6,), n), batches((6,), n, seed=9)


def assert_same_state(opt: adaloss.MetaLossOptimizer, model, twin, twin_opt, step: int) -> None:
    """The wrapper's optimizer state is torch's: same keys, dtypes and values."""
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        ours, theirs = opt.state[p], twin_opt.state[q]
        assert set(ours) == set(theirs), (step, name, set(ours) ^ set(theirs))
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype, (step, name, key)
            assert relative(ours[key], value) <= TOL or torch.equal(ours[key], value), (
                step, name, key, relative(ours[key], value),
            )  # fmt: skip


def run_against_torch(name, engine="forward", meta_every=2, scheduler=None, foreach=None):
    """The wrapper (ϕ fixed) and torch's optimizer on the same learned loss, step by step."""
    model, opt = build(name, hypergrad=engine, meta_every=meta_every)
    twin = make_model("mlp")
    twin_opt = CONFIGS[name](twin.parameters())
    for group in opt.param_groups + twin_opt.param_groups:
        group["foreach"] = foreach  # None: the single-tensor kernels on CPU
    learned = copy.deepcopy(opt.loss)
    schedulers = [scheduler(o) for o in (opt, twin_opt)] if scheduler else []
    phi = flat(opt.loss.parameters()).clone()
    train, val = data()
    paths = []
    for t, ((x, y), (xv, yv)) in enumerate(zip(train, val, strict=True)):
        paths.append(opt.step(x, y, xv, yv).task_loss is not None)
        twin_opt.zero_grad()
        learned(*opt.task.learned_loss_inputs(twin(x), y)).backward()
        twin_opt.step()
        for s in schedulers:
            s.step()
        difference = relative(flat(model.parameters()), flat(twin.parameters()))
        assert difference <= TOL, f"step {t}: relative difference {difference:.2e}"
        assert_same_state(opt, model, twin, twin_opt, t)
    assert torch.equal(flat(opt.loss.parameters()), phi)  # meta_lr = 0: ϕ is fixed
    return model, paths


@pytest.mark.parametrize(
    ("engine", "meta_every"), [("forward", 2), ("unroll", 2), ("forward", 1)]
)  # fmt: skip
@pytest.mark.parametrize("name", list(CONFIGS))
def test_base_steps_are_torchs_own(name, engine, meta_every, float64):
    model, paths = run_against_torch(name, engine, meta_every)
    assert paths == [t % meta_every == 0 for t in range(STEPS)]  # both paths were taken
    assert relative(flat(model.parameters()), flat(make_model("mlp").parameters())) > 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_hand_over_with_torchs_multi_tensor_kernels(name, float64):
    """foreach=True (torch's default on GPUs) keeps the same state format."""
    run_against_torch(name, foreach=True)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_update_is_linear_in_the_learning_rate(name, float64):
    """Meta-LR's premise: U at lr = a is a times U at lr = 1, for every rule."""
    model, opt = build(name)
    (x, y), (xv, yv) = batches((6,), 1)[0], batches((6,), 1, seed=9)[0]
    opt.step(x, y, xv, yv)  # non-empty optimizer state
    params = tuple(p.detach() for p in opt.update.params())
    grads = tuple(torch.randn_like(p) for p in params)
    unit, _ = opt.update.function(params, lr=1.0)(grads)
    scaled, _ = opt.update.function(params, lr=0.3)(grads)
    assert relative(flat(scaled), 0.3 * flat(unit)) <= 1e-12


@pytest.mark.parametrize("name", list(CONFIGS))
def test_scheduler_changes_the_step(name, float64):
    def step_lr(o):
        return torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.1)

    scheduled, _ = run_against_torch(name, scheduler=step_lr)
    constant, _ = run_against_torch(name)
    assert relative(flat(scheduled.parameters()), flat(constant.parameters())) > 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_engine_matches_unroll(name, float64):
    """Same dL_val/dϕ at every step, and the same θ and ϕ trajectories."""
    train, val = data(6)
    runs = {}
    for engine in ("unroll", "forward"):
        model, opt = build(name, meta_lr=1e-3, hypergrad=engine)
        series = []
        for (x, y), (xv, yv) in zip(train, val, strict=True):
            series.append(flat(opt.meta_gradient(x, y, xv, yv)))
            opt.step(x, y, xv, yv)
            series += [flat(model.parameters()), flat(opt.loss.parameters())]
        runs[engine] = series
    assert runs["unroll"][0].norm() > 0
    for i, (u, f) in enumerate(zip(runs["unroll"], runs["forward"], strict=True)):
        assert relative(f, u) <= 1e-6, f"item {i}: relative difference {relative(f, u):.2e}"


@pytest.mark.parametrize("engine", ["forward", "unroll"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_zero_gradients_keep_the_hypergradient_finite(name, engine, float64):
    """Dead ReLU units (exactly zero gradients, zero accumulators) do not make it NaN."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    with torch.no_grad():
        model[0].weight[:4] = 0
        model[0].bias[:4] = -1.0  # four units never fire
    opt = paper_optimizer(
        model, CONFIGS[name](model.parameters()), adaloss.Classification(3), meta_lr=1e-3,
        hypergrad=engine,
    )  # fmt: skip
    train, val = data(3)
    for (x, y), (xv, yv) in zip(train, val, strict=True):
        assert torch.isfinite(flat(opt.meta_gradient(x, y, xv, yv))).all()
        result = opt.step(x, y, xv, yv)
        assert result.meta_updated and not result.skipped


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_round_trip_continues_the_same_trajectory(name, float64):
    train, val = data()

    def run(opt, steps):
        for (x, y), (xv, yv) in steps:
            opt.step(x, y, xv, yv)

    pairs = list(zip(train, val, strict=True))
    model, opt = build(name, meta_lr=1e-3, meta_every=2)
    run(opt, pairs)
    model_a, opt_a = build(name, meta_lr=1e-3, meta_every=2)
    run(opt_a, pairs[:3])  # stop after a meta step: the next one is a plain torch step
    saved = copy.deepcopy((model_a.state_dict(), opt_a.state_dict()))
    del model_a, opt_a
    model_b, opt_b = build(name, meta_lr=1e-3, meta_every=2)
    model_b.load_state_dict(saved[0])
    opt_b.load_state_dict(saved[1])
    run(opt_b, pairs[3:])
    assert relative(flat(model_b.parameters()), flat(model.parameters())) <= 1e-12
    assert relative(flat(opt_b.loss.parameters()), flat(opt.loss.parameters())) <= 1e-12
    assert not torch.equal(flat(opt.loss.parameters()), flat(build(name)[1].loss.parameters()))


def test_unsupported_options_name_what_is_supported():
    model = make_model("mlp")
    for base in (
        torch.optim.Rprop(model.parameters()),
        torch.optim.RMSprop(model.parameters(), maximize=True),
        torch.optim.NAdam(model.parameters(), maximize=True),
        torch.optim.Adagrad(model.parameters(), maximize=True),
        torch.optim.Adamax(model.parameters(), lr=torch.tensor(0.1, requires_grad=True)),
    ):
        with pytest.raises(TypeError, match=r"RMSprop \(lr, alpha, eps, weight_decay, momentum"):
            paper_optimizer(model, base, adaloss.Classification(3))


@pytest.mark.parametrize("inner_steps", [1, 2])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_initialize_steps_from_fresh_state_and_restores_torchs(name, inner_steps, float64):
    """initialize()'s inner steps start from fresh state, as torch's first steps do, chain
    the state from one differentiable step to the next, and leave torch's state usable."""
    train, val = data(3)
    _, opt = build(name)
    before = copy.deepcopy(opt.base_optimizer.state_dict())
    (loss,) = opt.initialize(
        train[:inner_steps], [val[0]], steps=1, meta_lr=0.0, inner_steps=inner_steps
    )
    assert str(opt.base_optimizer.state_dict()) == str(before)
    _, fresh = build(name)
    for x, y in train[:inner_steps]:
        expected = float(fresh.step(x, y, *val[0]).task_loss)
    assert abs(loss - expected) <= TOL * abs(expected)
    opt.online = False
    assert not opt.step(*train[2]).skipped  # torch's own step on the restored state
