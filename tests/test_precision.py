"""Mixed precision: bf16 autocast around step(), fp16 loss scaling (adaloss.precision)."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import lenet5, mlp

import adaloss
from adaloss.precision import DynamicLossScale

ENGINES = ("forward", "unroll")


def build(model, hypergrad="forward", **kwargs):
    kwargs.setdefault("recipe", "paper")
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return adaloss.MetaLossOptimizer(
        model, base, adaloss.Classification(3), hypergrad=hypergrad, **kwargs
    )


def batch(shape=(6,), n=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=dtype)
    return x, torch.randint(0, 3, (n,), generator=g)


def relative(a, b) -> float:
    a = torch.cat([t.reshape(-1) for t in a]).double()
    b = torch.cat([t.reshape(-1) for t in b]).double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("hypergrad", ENGINES)
def test_bf16_autocast_steps_and_keeps_the_loss_network_float32(hypergrad):
    torch.manual_seed(0)
    opt = build(mlp(), hypergrad)
    x, y = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            result = opt.step(x, y, x.flip(0), y.flip(0))
    assert opt.steps == 3 and opt.skipped_steps == 0
    assert result.learned_loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in opt.loss.parameters())
    assert all(p.dtype == torch.float32 for p in opt.model.parameters())
    assert opt.scaling.scale_for(torch.device("cpu")) == 1.0  # bf16: no loss scaling


@pytest.mark.parametrize("hypergrad", ENGINES)
@pytest.mark.parametrize("name", ["mlp", "lenet5"])
def test_bf16_meta_gradient_error_against_float32(hypergrad, name):
    """The measured error that README.md quotes (fixed batch, fresh warm-started ϕ)."""
    torch.manual_seed(0)
    model, shape = (mlp(), (6,)) if name == "mlp" else (lenet5(), (1, 28, 28))
    opt = build(model, hypergrad, recipe="default")
    x, y = batch(shape, n=32)
    opt.initialize()
    full = opt.meta_gradient(x, y, x.flip(0), y.flip(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = opt.meta_gradient(x, y, x.flip(0), y.flip(0))
    error = relative(low, full)
    print(f"bf16 meta-gradient relative error, {name}, {hypergrad}: {error:.3g}")
    assert 0 < error < 0.1


def test_backward_passes_under_autocast_keep_float32_operations_in_float32():
    """torch runs a backward called under autocast with autocast on: the matrix products of
    float32 forward operations ran in bfloat16, the unroll engine's LeNet-5 meta-gradient
    was 108 % off on an Intel Xeon (BENCHMARKS.md, "bf16 and the unroll engine")."""
    from adaloss.hypergrad import scaled_grad

    torch.manual_seed(0)
    x = torch.randn(64, 40, requires_grad=True)
    weight, head = torch.randn(40, 40, requires_grad=True), torch.randn(40, 1)

    def first_and_second(autocast: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            with torch.autocast("cpu", enabled=False):  # a float32 loss, as the library's
                value = (torch.tanh(x @ weight) @ head).sum()
            (g,) = scaled_grad(value, [x], create_graph=True)
            (second,) = scaled_grad((g * g).sum(), [weight])
        return g, second

    for full, low in zip(first_and_second(False), first_and_second(True), strict=True):
        assert low.dtype == torch.float32 and torch.equal(low, full)


@pytest.mark.parametrize("hypergrad", ENGINES)
def test_power_of_two_grad_scale_changes_nothing_in_float64(hypergrad, float64):
    torch.manual_seed(0)
    plain = build(mlp().double(), hypergrad, meta_every=2)
    torch.manual_seed(0)
    scaled = build(mlp().double(), hypergrad, meta_every=2, grad_scale="dynamic")
    for seed in range(4):  # meta steps and plain steps
        x, y = batch(seed=seed, dtype=torch.float64)
        plain.step(x, y)
        scaled.step(x, y)
    assert scaled.scaling.dynamic.scale == 2.0**16 and scaled.skipped_steps == 0
    everything = [[*o.model.parameters(), *o.loss.parameters()] for o in (plain, scaled)]
    for a, b in zip(*everything, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("hypergrad", ENGINES)
@pytest.mark.parametrize("online", [True, False])  # meta steps; plain steps
def test_an_overflowing_scale_rejects_quietly_and_halves(hypergrad, online):
    """An injected overflow: S = 2^129 and 2^128 are inf in float32 and scaled gradients
    overflow well below that; halving finds a scale that works, and the first committed
    step is the unscaled twin's."""
    torch.manual_seed(0)
    opt = build(mlp(), hypergrad, grad_scale="dynamic", online=online)
    opt.scaling.dynamic.scale = 2.0**129
    torch.manual_seed(0)
    twin = build(mlp(), hypergrad, online=online, grad_scale=None)
    x, y = batch()
    params = [p.detach().clone() for p in opt.model.parameters()]
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow rejections are quiet
        while not results or results[-1].skipped:
            assert len(results) < 60
            if results:  # nothing moved while rejected
                moved = opt.model.parameters()
                assert all(torch.equal(a, b) for a, b in zip(params, moved, strict=True))
            results.append(opt.step(x, y))
    rejected = len(results) - 1
    assert rejected >= 2 and opt.skipped_steps == opt.scaling.dynamic.overflows == rejected
    assert opt.steps == 1 and opt.scaling.dynamic.scale == 2.0 ** (129 - rejected)
    twin_result = twin.step(x, y)
    for a, b in zip(opt.model.parameters(), twin.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[-1].learned_loss, twin_result.learned_loss)


def test_dynamic_grad_scale_policy():
    scale = DynamicLossScale(init_scale=8.0, growth_interval=3)
    for overflow, expected in [(False, 8), (False, 8), (False, 16), (True, 8), (False, 8)]:
        scale.update(overflow)
        assert scale.scale == expected
    assert scale.overflows == 1 and scale.good_steps == 1


def test_a_non_finite_learned_loss_is_no_overflow(float64):
    """Only gradients overflow from scaling: a NaN loss warns and leaves the scale alone."""
    torch.manual_seed(0)
    opt = build(mlp().double(), grad_scale="dynamic")
    x, y = batch(dtype=torch.float64)
    with torch.no_grad():
        next(opt.loss.parameters())[0].fill_(float("nan"))
    with pytest.warns(RuntimeWarning, match="step rejected"):
        opt.step(x, y)
    assert opt.skipped_steps == 1 and opt.scaling.dynamic.scale == 2.0**16
    assert opt.scaling.dynamic.good_steps == 0 and opt.scaling.dynamic.overflows == 0


def test_grad_scale_auto_follows_float16_autocast_and_survives_checkpoints():
    torch.manual_seed(0)
    opt = build(mlp())
    cpu = torch.device("cpu")
    assert opt.scaling.scale_for(cpu) == 1.0
    with torch.autocast("cpu", dtype=torch.float16):
        assert opt.scaling.scale_for(cpu) == 2.0**16
        x, y = batch()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results = [opt.step(x, y) for _ in range(20)]
    assert opt.steps > 0 and opt.steps + opt.skipped_steps == 20
    assert sum(r.skipped for r in results) == opt.scaling.dynamic.overflows
    state = opt.state_dict()
    fresh = build(mlp())
    fresh.load_state_dict(state)
    assert fresh.scaling.state_dict() == opt.scaling.state_dict()
    with pytest.raises(ValueError, match="grad_scale must be one of"):
        build(mlp(), grad_scale="static")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("hypergrad", ENGINES)
def test_cuda_autocast_steps(dtype, hypergrad):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    torch.manual_seed(0)
    opt = build(lenet5().cuda(), hypergrad, recipe="default")
    x, y = (t.cuda() for t in batch((1, 28, 28), n=64))
    with torch.autocast("cuda", dtype=dtype):
        results = [opt.step(x, y, x.flip(0), y.flip(0)) for _ in range(10)]
    assert opt.steps > 0 and opt.steps + opt.skipped_steps == 10
    assert all(torch.isfinite(p).all() for p in [*opt.model.parameters(), *opt.meta_params])
    assert all(p.dtype == torch.float32 for p in opt.loss.parameters())
    if dtype == torch.bfloat16:
        assert not any(r.skipped for r in results)
