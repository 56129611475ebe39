"""The forward-mode engine gives the unroll engine's hypergradient (DESIGN: one answer)."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import pytest
import torch
from conftest import MODELS, OPTIMIZERS, batches, make_model, paper_optimizer
from torch import nn

import adaloss
from adaloss.bench.config import LOSSES

# float32: the BatchNorm CNN with AdamW measured 1.04e-4 with one torch thread (below 1e-4 with
# two): reduction order alone moves it there, so 1e-4 was a coin flip on the thread count.
TOLERANCE = {torch.float64: 1e-6, torch.float32: 3e-4}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def build(model_name, opt_name, dtype, engine, **kwargs):
    model = make_model(model_name, dtype=dtype)
    torch.manual_seed(7)
    loss = adaloss.LossNetwork().to(dtype)
    base = OPTIMIZERS[opt_name](model.parameters())
    opt = paper_optimizer(
        model, base, adaloss.Classification(3), loss=loss, hypergrad=engine, meta_lr=1e-3, **kwargs
    )
    return model, opt


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_forward_matches_unroll(model_name, opt_name, dtype):
    """Same meta-gradient at every step, and the same θ and ϕ trajectories over 5 steps."""
    data = batches(MODELS[model_name][1], n=10, dtype=dtype)
    tol = TOLERANCE[dtype]
    runs = {}
    for engine in ("unroll", "forward"):
        torch.manual_seed(3)  # same dropout masks for both engines
        model, opt = build(model_name, opt_name, dtype, engine)
        thetas, phis, meta_grads = [], [], []
        for t in range(5):
            x, y = data[2 * t]
            xv, yv = data[2 * t + 1]
            rng = torch.get_rng_state()
            meta_grads.append(flat(opt.meta_gradient(x, y, xv, yv)))
            torch.set_rng_state(rng)
            result = opt.step(x, y, xv, yv)
            assert result.meta_updated and not result.skipped
            thetas.append(flat(model.parameters()))
            phis.append(flat(opt.loss.parameters()))
        runs[engine] = (thetas, phis, meta_grads)
    for series_u, series_f in zip(runs["unroll"], runs["forward"], strict=True):
        for t, (u, f) in enumerate(zip(series_u, series_f, strict=True)):
            assert relative(f, u) <= tol, f"step {t}: relative difference {relative(f, u):.2e}"
    # The meta-gradient is not trivially zero, so the comparison has teeth.
    assert runs["unroll"][2][0].norm() > 0


def test_meta_gradient_matches_finite_difference(float64):
    """unroll's dL_val/dϕ equals a central difference: perturb ϕ, redo the step, re-measure."""
    model, opt = build("mlp", "momentum", torch.float64, "unroll")
    x, y = batches((6,), 1, seed=4)[0]
    xv, yv = batches((6,), 1, seed=5)[0]
    for _ in range(2):  # get a momentum buffer so the state path is exercised
        opt.step(x, y, xv, yv)
    analytic = flat(opt.meta_gradient(x, y, xv, yv))

    def val_loss_after_step(phi_flat: torch.Tensor) -> float:
        # One deepcopy keeps the optimizer's state attached to the copied parameters.
        m, o, loss = copy.deepcopy((model, opt.base_optimizer, opt.loss))
        torch.nn.utils.vector_to_parameters(phi_flat, loss.parameters())
        probe = paper_optimizer(
            m, o, adaloss.Classification(3), loss=loss, hypergrad="unroll", online=False
        )
        probe.step(x, y)
        with torch.no_grad():  # a value, not a graph: float() of a graph warns
            return float(adaloss.Classification(3).loss(m(xv), yv))

    phi = torch.nn.utils.parameters_to_vector(opt.loss.parameters()).detach()

    def central(i: int, eps: float) -> float:
        e = torch.zeros_like(phi)
        e[i] = eps
        return (val_loss_after_step(phi + e) - val_loss_after_step(phi - e)) / (2 * eps)

    # The entries that matter (the largest), each checked against a tolerance derived from
    # the difference's own error: halving ε changes a central difference by ~3/4 of its
    # truncation error, and rounding adds ~ε_mach·|L|/ε. A 1 % error must not fit in it.
    for i in analytic.abs().argsort(descending=True)[:6].tolist():
        coarse, fine = central(i, 1e-3), central(i, 5e-4)
        tol = 2 * abs(coarse - fine) + 1e-15 / 5e-4
        assert tol < 1e-3 * abs(fine), (i, fine, tol)  # the check has teeth
        assert abs(float(analytic[i]) - fine) <= tol, (i, float(analytic[i]), fine, tol)
        assert abs(1.01 * float(analytic[i]) - fine) > tol


@pytest.mark.parametrize(
    "model_name, dtype, tol",
    [
        ("lenet5", torch.float64, 1e-5),
        ("dropout_mlp", torch.float64, 1e-6),  # the same mask in both shifted forwards
        ("bn_cnn", torch.float64, 1e-5),  # batch statistics, running statistics untouched
        ("mlp", torch.float32, 3e-2),  # ε balances truncation and float32 rounding
    ],
)
def test_finite_difference_jvp_is_close(model_name, dtype, tol):
    shape = MODELS[model_name][1]
    x, y = batches(shape, 1, seed=2, dtype=dtype)[0]
    grads = []
    for jvp in ("autograd", "finite_difference"):
        model, opt = build(model_name, "adam", dtype, "forward", jvp=jvp)
        before = [b.clone() for b in model.buffers()]
        torch.manual_seed(4)
        grads.append(flat(opt.meta_gradient(x, y)))
        assert all(torch.equal(a, b) for a, b in zip(before, model.buffers(), strict=True))
        opt.step(x, y)  # the extra forwards of a committed step leave no trace either
        twin = make_model(model_name, dtype=dtype)
        twin(x)  # one training forward
        assert all(torch.equal(a, b) for a, b in zip(twin.buffers(), model.buffers(), strict=True))
    assert relative(grads[1], grads[0]) < tol
    assert grads[0].norm() > 0


class NoJvp(torch.autograd.Function):
    """An operation with a backward but no jvp rule (torch.func style)."""

    @staticmethod
    def forward(x):
        return x * 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class OldStyle(torch.autograd.Function):
    """An old-style Function: torch.func cannot transform it at all."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class Doubler(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function.apply(x)


@pytest.mark.parametrize("function", [NoJvp, OldStyle])
def test_missing_forward_rule_falls_back_to_unroll_once(function, float64):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3), Doubler(function))
    reference = copy.deepcopy(model)
    torch.manual_seed(1)
    loss = adaloss.LossNetwork()
    opts = [
        paper_optimizer(
            m, torch.optim.SGD(m.parameters(), lr=0.1), adaloss.Classification(3),
            loss=copy.deepcopy(loss), hypergrad=engine, meta_lr=1e-3,
        )
        for m, engine in ((model, "forward"), (reference, "unroll"))
    ]  # fmt: skip
    data = batches((6,), 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x, y in data:
            for opt in opts:
                opt.step(x, y)
    messages = [str(w.message) for w in caught if "forward-mode" in str(w.message)]
    assert len(messages) == 1 and "jvp" in messages[0]
    assert opts[0].hypergrad == "unroll"
    assert relative(flat(model.parameters()), flat(reference.parameters())) < 1e-12
    assert relative(flat(opts[0].loss.parameters()), flat(opts[1].loss.parameters())) < 1e-12


def test_initialize_falls_back_too_and_leaves_callers_iterator_open(float64):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3), Doubler(NoJvp))
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3)
    )
    stream = iter(batches((6,), 6))
    with pytest.warns(RuntimeWarning, match="forward-mode"):
        losses = opt.initialize(stream, steps=3)
    assert len(losses) == 3 and opt.hypergrad == "unroll"
    next(stream)  # initialize() did not close the iterator it was given


def test_frozen_parameters_and_parameter_groups(float64):
    """requires_grad=False parameters stay put; per-group hyper-parameters reach both engines."""
    grads = {}
    for engine in ("unroll", "forward"):
        model = make_model("mlp")
        model[0].weight.requires_grad_(False)
        frozen = model[0].weight.clone()
        base = torch.optim.SGD(
            [
                {"params": [model[0].bias, *model[2].parameters()], "lr": 0.05, "momentum": 0.5},
                {"params": model[4].parameters(), "lr": 0.2, "nesterov": True, "momentum": 0.9},
            ],
            lr=0.1,
        )
        torch.manual_seed(7)
        opt = paper_optimizer(
            model, base, adaloss.Classification(3), hypergrad=engine, meta_lr=1e-3
        )
        data = batches((6,), 6)
        for x, y in data[:3]:
            opt.step(x, y, *data[5])
        grads[engine] = flat(opt.meta_gradient(*data[3], *data[4]))
        assert torch.equal(model[0].weight, frozen)
    assert relative(grads["forward"], grads["unroll"]) < 1e-10


def test_initialize_with_several_inner_steps_restores_the_model(float64):
    model = make_model("bn_cnn")
    theta0 = flat(model.parameters()).clone()
    buffers0 = [b.clone() for b in model.buffers()]
    torch.manual_seed(7)
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        adaloss.Classification(3),
    )  # fmt: skip
    phi0 = flat(opt.loss.parameters()).clone()
    data = batches((1, 8, 8), 4)
    losses = opt.initialize(data[:3], data[3:], steps=4, meta_lr=1e-2, inner_steps=3)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert torch.equal(flat(model.parameters()), theta0)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers0, strict=True))
    assert len(opt.state) == 0  # fresh optimizer state for online training
    assert not torch.equal(flat(opt.loss.parameters()), phi0)


def test_several_inner_steps_unroll_matches_finite_difference(float64):
    """The multi-step unroll of initialize() differentiates through the momentum chain."""
    from adaloss.offline import _unrolled

    model = make_model("mlp")
    torch.manual_seed(7)
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.2),
        adaloss.Classification(3), hypergrad="unroll",
    )  # fmt: skip
    data = batches((6,), 4)
    analytic, _ = _unrolled(opt._offline_learner(), data[:3], *data[3])
    analytic = flat(analytic)
    phi = torch.nn.utils.parameters_to_vector(opt.loss.parameters()).detach()

    def objective(vector):
        torch.nn.utils.vector_to_parameters(vector, opt.loss.parameters())
        return float(_unrolled(opt._offline_learner(), data[:3], *data[3])[1])

    eps = 1e-6
    for i in (0, 17, 100, phi.numel() - 1):
        e = torch.zeros_like(phi)
        e[i] = eps
        numeric = (objective(phi + e) - objective(phi - e)) / (2 * eps)
        assert abs(numeric - analytic[i]) <= 1e-7 + 1e-4 * abs(numeric)
    torch.nn.utils.vector_to_parameters(phi, opt.loss.parameters())


@pytest.mark.parametrize("representation", ["anchored", "monotone"])
@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
def test_engines_agree_for_the_anchored_and_monotone_losses(opt_name, representation, float64):
    """The anchored loss differentiates ℓ inside its forward, the monotone one switches its
    coefficients with the sign of p − t: both engines still agree."""
    grads = {}
    for engine in ("unroll", "forward"):
        model = make_model("mlp")
        torch.manual_seed(7)
        opt = paper_optimizer(
            model, OPTIMIZERS[opt_name](model.parameters()), adaloss.Classification(3),
            loss=LOSSES[representation](), hypergrad=engine, meta_lr=1e-3,
        )  # fmt: skip
        data = batches((6,), 4)
        opt.step(*data[0], *data[1])
        grads[engine] = flat(opt.meta_gradient(*data[2], *data[3]))
    assert grads["unroll"].norm() > 0
    assert relative(grads["forward"], grads["unroll"]) < 1e-8


@pytest.mark.parametrize(
    "task, outputs, make_targets",
    [
        (adaloss.Regression(1), 1, lambda g: torch.rand(8, generator=g, dtype=torch.float64)),
        (adaloss.Regression(2), 2, lambda g: torch.rand(8, 2, generator=g, dtype=torch.float64)),
        (adaloss.BinaryClassification(), 1, lambda g: torch.randint(0, 2, (8, 1), generator=g)),
    ],
    ids=["regression-1d", "regression-2", "binary"],
)
def test_engines_agree_on_every_task(task, outputs, make_targets, float64):
    g = torch.Generator().manual_seed(0)
    x, xv = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    y, yv = make_targets(g), make_targets(g)
    grads = {}
    for engine in ("unroll", "forward"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, outputs))
        if outputs == 1 and y.dim() == 1:
            model.append(nn.Flatten(0))  # (B,) outputs for one regression target
        opt = paper_optimizer(
            model, torch.optim.Adam(model.parameters(), lr=1e-2), task, hypergrad=engine
        )
        opt.step(x, y, xv, yv)
        grads[engine] = flat(opt.meta_gradient(x, y, xv, yv))
    assert grads["unroll"].norm() > 0
    assert relative(grads["forward"], grads["unroll"]) < 1e-8


def test_fall_back_replays_dropout_and_leaves_batchnorm_updated_once(float64):
    """The redo after a missing forward rule rewinds the RNG and BatchNorm's statistics.

    Against a twin that runs ``unroll`` from the start: same dropout masks (same θ), same
    running statistics (updated once, not twice), same RNG state after the step.
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3),
        Doubler(NoJvp),
    )  # fmt: skip
    reference = copy.deepcopy(model)
    torch.manual_seed(1)
    loss = adaloss.LossNetwork()
    opts = [
        paper_optimizer(
            m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), adaloss.Classification(3),
            loss=copy.deepcopy(loss), hypergrad=engine, meta_lr=1e-3,
        )
        for m, engine in ((model, "forward"), (reference, "unroll"))
    ]  # fmt: skip
    x, y = batches((6,), 1)[0]
    rng = []
    with pytest.warns(RuntimeWarning, match="forward-mode"):
        for opt in opts:
            torch.manual_seed(5)
            opt.step(x, y)
            rng.append(torch.get_rng_state())
    assert opts[0].hypergrad == "unroll"
    assert torch.equal(rng[0], rng[1])
    for (name, a), b in zip(model.named_buffers(), reference.buffers(), strict=True):
        assert torch.equal(a, b), name
    assert relative(flat(model.parameters()), flat(reference.parameters())) < 1e-12
    assert relative(flat(opts[0].loss.parameters()), flat(opts[1].loss.parameters())) < 1e-12


def test_the_first_forward_step_of_a_process_warns_nothing():
    """torch's first jvp scripts its JVP decompositions (a FutureWarning of torch's own); the
    user's first step must not show it. A fresh process: the suite has loaded them already."""
    code = (
        "import torch, adaloss\n"
        "torch.manual_seed(0)\n"
        "m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))\n"
        "opt = adaloss.MetaLossOptimizer(m, torch.optim.SGD(m.parameters(), lr=0.1),\n"
        "                                adaloss.Classification(3))\n"
        "x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))\n"
        "assert opt.step(x, y, x, y).meta_updated\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
