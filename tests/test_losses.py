"""Learned-loss representations (paper §2.2, Appendix B/D.1/D.2): finiteness, smoothness, shape.

Every property test draws a seed for ϕ (``torch.manual_seed(seed)`` then construct the
representation) and random inputs, either in the range the task mapping produces
(probabilities and one-hot targets) or in a wider regression-like range [-10, 10].
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn
from torch.nn import functional as F

from adaloss.losses import (
    LossNetwork,
    ML3Network,
    MonotoneLossNetwork,
    SmoothLeakyReLU,
    TaylorLoss,
    _softplus_rise,
)
from adaloss.tasks import BinaryClassification, Classification

PROPERTY = settings(max_examples=200, deadline=None)
KINDS = ("lossnet", "ml3", "monotone", "taylor2", "taylor3")
DTYPES = (torch.float32, torch.float64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread_private_rng():
    """Small networks run fastest on one thread; keep the global RNG as other modules left it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        yield
    torch.set_num_threads(threads)


def make_loss(kind: str, seed: int, dtype=torch.float64, reduction: str = "mean", **kw):
    """A representation with ϕ drawn from ``seed`` (TaylorLoss: random centre and coefficients)."""
    torch.manual_seed(seed)
    if kind == "lossnet":
        loss = LossNetwork(reduction=reduction, **kw)
    elif kind == "ml3":
        loss = ML3Network(reduction=reduction, **kw)
    elif kind == "monotone":
        loss = MonotoneLossNetwork(reduction=reduction, **kw)
        with torch.no_grad():  # its init is ≈ the squared error; draw every parameter instead
            for param in loss.parameters():
                param.normal_()
    else:
        loss = TaylorLoss(degree=int(kind[-1]), reduction=reduction)
        with torch.no_grad():  # its init is deterministic; draw a random ϕ instead
            loss.center.normal_()
            loss.coefficients.normal_()
    return loss.to(dtype)


def dloss_dpred(loss: nn.Module, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ℓ'(p_k, t_k) = ∂ℓ/∂pred at each point (1-D tensors), through the public forward."""
    assert loss.reduction == "none"
    p = p.detach().reshape(-1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(p, t.reshape(-1, 1)).sum(), p)
    return grad.reshape(-1)


def pointwise_values(loss: nn.Module, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ℓ(p_k, t_k): with one channel, reduction "none" gives ℓ itself per row."""
    assert loss.reduction == "none"
    return loss(p.reshape(-1, 1), t.reshape(-1, 1)).reshape(-1)


def floats_array(shape, low: float, high: float, dtype=np.float64):
    width = 32 if dtype == np.float32 else 64
    return arrays(dtype, shape, elements=st.floats(low, high, width=width))


@st.composite
def regression_inputs(draw, low: float = -10.0, high: float = 10.0):
    """(pred, target) of shape (B, C), float64, values in [low, high]."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 8)))
    pred = torch.from_numpy(draw(floats_array(shape, low, high)))
    target = torch.from_numpy(draw(floats_array(shape, low, high)))
    return pred, target


@st.composite
def classification_inputs(draw):
    """(probabilities, one-hot) exactly as the classification tasks map logits and labels."""
    batch, classes = draw(st.integers(1, 6)), draw(st.sampled_from([1, 2, 3, 10]))
    logits = torch.from_numpy(draw(floats_array((batch, classes), -60.0, 60.0)))
    if classes == 1:
        labels = torch.tensor(draw(st.lists(st.integers(0, 1), min_size=batch, max_size=batch)))
        return BinaryClassification().learned_loss_inputs(logits, labels)
    labels = draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch))
    return Classification(classes).learned_loss_inputs(logits, torch.tensor(labels))


def assert_finite_with_finite_gradients(loss, pred, target, dtype):
    loss = loss.to(dtype)
    pred = pred.to(dtype).requires_grad_(True)
    value = loss(pred, target.to(dtype))
    assert value.dtype == dtype
    assert torch.isfinite(value), f"loss {value} for pred {pred} target {target}"
    value.backward()
    assert torch.isfinite(pred.grad).all(), f"∂/∂pred = {pred.grad}"
    for name, param in loss.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"∂/∂{name} = {param.grad}"


# ---------------------------------------------------------------------------- finiteness


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31 - 1),
    inputs=classification_inputs(),
)
def test_finite_on_task_mapped_inputs(kind, dtype, seed, inputs):
    assert_finite_with_finite_gradients(make_loss(kind, seed), *inputs, dtype)


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31 - 1),
    inputs=regression_inputs(),
)
def test_finite_on_regression_range(kind, dtype, seed, inputs):
    assert_finite_with_finite_gradients(make_loss(kind, seed), *inputs, dtype)


# ------------------------------------------------------------------------------ smoothness


def relu_kink_margin(net: nn.Sequential, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Distance along pred from each point to the nearest kink of a ReLU network.

    Each ReLU pre-activation is piecewise linear in pred, so |z| / |∂z/∂pred| is how far
    pred can move before that unit switches (exact within the current linear piece).
    """
    x = torch.stack((p, t), dim=-1)
    dx = torch.zeros_like(x)
    dx[:, 0] = 1.0
    margin = torch.full_like(p, math.inf)
    for module in net:
        if isinstance(module, nn.Linear):
            x, dx = module(x), dx @ module.weight.T
        elif isinstance(module, nn.ReLU):
            margin = torch.minimum(margin, (x.abs() / dx.abs()).amin(dim=-1))
            active = x > 0
            x, dx = x * active, dx * active
        else:  # the Softplus output is smooth
            break
    return margin


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**31 - 1),
    points=st.integers(1, 16).flatmap(
        lambda n: st.tuples(floats_array((n,), -10.0, 10.0), floats_array((n,), -10.0, 10.0))
    ),
)
def test_autograd_derivative_matches_central_difference(kind, seed, points):
    """∂ℓ/∂pred from autograd equals (ℓ(p+h) − ℓ(p−h)) / 2h in float64.

    h = 1e-5: truncation error h²·|ℓ'''|/6 ≲ 1e-8 and rounding error ~1e-16·|ℓ|/h ≲ 1e-8 for
    the value ranges here, so a tolerance of 1e-6 (relative to max(1, |ℓ'|)) has margin.
    ML3Network is a ReLU network, differentiable only away from its kinks: points closer
    than 10h to a kink (a measure-zero set, almost never drawn) are left out, and so are
    MonotoneLossNetwork's points within 10h of p = t.
    """
    loss = make_loss(kind, seed, reduction="none")
    p, t = (torch.from_numpy(a) for a in points)
    h = 1e-5
    with torch.no_grad():
        central = (pointwise_values(loss, p + h, t) - pointwise_values(loss, p - h, t)) / (2 * h)
    autograd = dloss_dpred(loss, p, t)
    keep = torch.ones_like(p, dtype=torch.bool)
    if kind == "ml3":
        keep = relu_kink_margin(loss.net, p, t) > 10 * h
    if kind == "monotone":  # C¹ but not C² at p = t (each side has its own G): a difference
        keep = (p - t).abs() > 10 * h  # straddling it is off by O(h·ΔG'), autograd is exact
    tol = 1e-6 * autograd.abs().clamp(min=1.0)
    err = (autograd - central).abs()
    assert (err[keep] <= tol[keep]).all(), f"autograd {autograd} vs central difference {central}"


def second_derivative_bound(net: LossNetwork, beta: float, gamma: float) -> float:
    """H with sup over (pred, target) of |∂²ℓ/∂pred²| ≤ H, for a SmoothLeakyReLU network.

    For φ(x) = γx + (1−γ)·softplus(x; β): φ' = γ + (1−γ)σ(βx) ∈ [γ, 1] and
    φ'' = (1−γ)β·σ(βx)(1 − σ(βx)) ∈ [0, (1−γ)β/4] =: c  (both checked below).
    Write z_k = W_k φ(z_{k−1}) + b_k with z_1 = W_1 (p, t) + b_1, and let G_k ≥ ‖∂z_k/∂p‖,
    H_k ≥ ‖∂²z_k/∂p²‖ (Euclidean norms). Differentiating twice,
        ∂z_k/∂p   = W_k (φ'(z_{k−1}) ⊙ ∂z_{k−1}/∂p)
        ∂²z_k/∂p² = W_k (φ''(z_{k−1}) ⊙ (∂z_{k−1}/∂p)⊙² + φ'(z_{k−1}) ⊙ ∂²z_{k−1}/∂p²),
    and ‖v ⊙ v‖₂ ≤ ‖v‖₂², |φ'| ≤ 1, |φ''| ≤ c give, with ‖W_k‖ the spectral norm,
        G_1 = ‖W_1[:, 0]‖ (pred is input column 0), H_1 = 0,
        G_k = ‖W_k‖·G_{k−1},  H_k = ‖W_k‖·(c·G_{k−1}² + H_{k−1}).
    The output z_L = ℓ, so |ℓ''| ≤ H_L; for the paper's 2-40-40-1 network this is
    H = c·‖W_3‖·‖W_1[:, 0]‖²·(‖W_2‖² + ‖W_2‖). By the mean value theorem
    |ℓ'(p+δ) − ℓ'(p)| ≤ H·δ for every δ > 0: the derivative has no jumps (kinks), and the
    bound shrinks with δ. A ReLU network breaks this at any kink (tested below).
    """
    c = (1.0 - gamma) * beta / 4.0
    linears = [m for m in net.net if isinstance(m, nn.Linear)]
    g = float(linears[0].weight[:, 0].detach().norm())
    h = 0.0
    for linear in linears[1:]:
        w = float(torch.linalg.matrix_norm(linear.weight.detach(), ord=2))
        g, h = w * g, w * (c * g * g + h)
    return h


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    hidden=st.sampled_from([(40, 40), (8,), (16, 16, 16)]),
    beta=st.floats(0.5, 50.0),
    gamma=st.floats(0.0, 0.5),
    delta=st.floats(1e-6, 1.0),
    points=st.integers(1, 16).flatmap(
        lambda n: st.tuples(floats_array((n,), -10.0, 10.0), floats_array((n,), -10.0, 10.0))
    ),
)
def test_lossnetwork_derivative_is_lipschitz(seed, hidden, beta, gamma, delta, points):
    """No kinks: |ℓ'(p+δ) − ℓ'(p)| ≤ H·δ with H from ``second_derivative_bound``.

    Slack 1e-9: float64 rounding of two autograd derivatives of size ≲ 1e3.
    """
    loss = make_loss("lossnet", seed, reduction="none", hidden=hidden, beta=beta, gamma=gamma)
    bound = second_derivative_bound(loss, beta, gamma)
    p, t = (torch.from_numpy(a) for a in points)
    change = (dloss_dpred(loss, p + delta, t) - dloss_dpred(loss, p, t)).abs()
    assert torch.isfinite(change).all()
    assert (change <= bound * delta + 1e-9).all(), f"{change.max()} > {bound} * {delta}"


def first_layer_kinks(net: nn.Sequential, target: float, low=-10.0, high=10.0) -> torch.Tensor:
    """The preds where some first-layer unit's pre-activation W·(p, t) + b crosses zero."""
    first = net[0]
    w_p, w_t = first.weight[:, 0].detach(), first.weight[:, 1].detach()
    kinks = -(first.bias.detach() + w_t * target) / w_p
    return kinks[(kinks > low) & (kinks < high)]


def derivative_jumps(loss: nn.Module, kinks: torch.Tensor, target: float, delta: float):
    t = torch.full_like(kinks, target)
    return (dloss_dpred(loss, kinks + delta / 2, t) - dloss_dpred(loss, kinks - delta / 2, t)).abs()


def test_lipschitz_check_detects_kinks_of_a_relu_network():
    """The no-kink check can fail: the same network with ReLU hidden units violates it.

    Across a first-layer ReLU kink the derivative jumps by a fixed amount however small δ
    is, so |Δℓ'| ≤ H·δ fails for small δ, while the SmoothLeakyReLU network satisfies it
    at exactly the same points.
    """
    target, delta = 0.3, 1e-7
    smooth = make_loss("lossnet", 0, reduction="none")
    bound = second_derivative_bound(smooth, beta=10.0, gamma=0.01)
    kinks = first_layer_kinks(smooth.net, target)
    assert len(kinks) >= 5
    assert (derivative_jumps(smooth, kinks, target, delta) <= bound * delta + 1e-9).all()

    relu = make_loss("lossnet", 0, reduction="none")
    for i, module in enumerate(relu.net):
        if isinstance(module, SmoothLeakyReLU):
            relu.net[i] = nn.ReLU()
    jumps = derivative_jumps(relu, kinks, target, delta)
    assert jumps.max() > 100 * bound * delta


def test_ml3_network_has_kinks_by_design():
    """What is checked for ML3 (ReLU hidden, Softplus output, Bechtle et al. 2021).

    ML3 is not C¹, so the no-kink property is not asserted for it; instead: it is
    differentiable away from its kinks (central-difference test above), non-negative
    (test below), and its kinks are real: the derivative jump across a kink does not
    shrink as δ → 0 — the flaw the paper's smooth leaky ReLU removes (§2.2, App. D.2).
    """
    target = 0.3
    loss = make_loss("ml3", 0, reduction="none")
    kinks = first_layer_kinks(loss.net, target)
    coarse = derivative_jumps(loss, kinks, target, 1e-6)
    fine = derivative_jumps(loss, kinks, target, 1e-9)
    k = int(coarse.argmax())
    assert coarse[k] > 1e-3
    assert fine[k] > 0.5 * coarse[k]  # a smooth function would give fine ≈ 1e-3·coarse


# ------------------------------------------------------------------------ SmoothLeakyReLU


def slrelu_grad(phi: SmoothLeakyReLU, x: torch.Tensor, create_graph: bool = False):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(phi(x).sum(), x, create_graph=create_graph)
    return x, grad


WIDE = (-1e4, -1e3, -100.0, -10.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 10.0, 100.0, 1e3, 1e4)


@PROPERTY
@given(
    beta=st.floats(0.1, 100.0),
    gamma=st.floats(1e-4, 1.0),
    dtype=st.sampled_from(DTYPES),
    xs=st.lists(st.floats(-1e4, 1e4), max_size=16),
)
def test_smooth_leaky_relu_slope_between_gamma_and_one(beta, gamma, dtype, xs):
    """φ'(x) ∈ [γ, 1] on [-1e4, 1e4]: no flat regions (§2.2), and the |φ'| ≤ 1 the bound uses."""
    phi = SmoothLeakyReLU(beta, gamma)
    x = torch.tensor(WIDE + tuple(xs), dtype=dtype)
    _, grad = slrelu_grad(phi, x)
    assert torch.isfinite(phi(x)).all()
    assert torch.isfinite(grad).all(), f"φ' = {grad} at {x}"
    eps = torch.finfo(dtype).eps
    assert (grad >= gamma * (1 - 4 * eps)).all(), f"min φ' = {grad.min()} < γ = {gamma}"
    assert (grad <= 1 + 4 * eps).all()


@PROPERTY
@given(
    beta=st.floats(0.1, 100.0),
    gamma=st.floats(0.0, 1.0),
    xs=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=16),
)
def test_smooth_leaky_relu_curvature_bound(beta, gamma, xs):
    """0 ≤ φ'' ≤ (1−γ)β/4, attained at x = 0: the constant c of ``second_derivative_bound``."""
    phi = SmoothLeakyReLU(beta, gamma)
    x, grad = slrelu_grad(phi, torch.tensor([0.0, *xs], dtype=torch.float64), create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    c = (1 - gamma) * beta / 4
    assert (second >= -1e-12).all()
    assert (second <= c * (1 + 1e-12) + 1e-12).all(), f"max φ'' = {second.max()} > {c}"
    assert second[0].item() == pytest.approx(c, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("beta", [1.0, 10.0, 100.0])
@pytest.mark.parametrize("gamma", [0.0, 0.01, 0.5])
def test_smooth_leaky_relu_never_overflows(beta, gamma):
    phi = SmoothLeakyReLU(beta, gamma)
    x = torch.tensor([-1e30, -1e6, -1e4, 1e4, 1e6, 1e30], dtype=torch.float32)
    x, grad = slrelu_grad(phi, x)
    y = phi(x).detach()
    assert torch.isfinite(y).all(), y
    assert torch.isfinite(grad).all(), grad
    # linear asymptotes: φ(x) ≈ x for x → +∞ and ≈ γx for x → −∞
    torch.testing.assert_close(y[3:], x[3:].detach(), rtol=1e-6, atol=0.0)
    torch.testing.assert_close(y[:3], gamma * x[:3].detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, torch.tensor([gamma] * 3 + [1.0] * 3), rtol=1e-6, atol=0.0)


def test_smooth_leaky_relu_formula():
    """φ(x) = γx + (1−γ)·log(1 + e^{βx})/β (paper Eq. 4) at moderate x, from math."""
    beta, gamma = 3.0, 0.2
    xs = [-4.0, -0.5, 0.0, 0.25, 2.0, 7.0]
    expected = [gamma * x + (1 - gamma) * math.log1p(math.exp(beta * x)) / beta for x in xs]
    got = SmoothLeakyReLU(beta, gamma)(torch.tensor(xs, dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_smooth_leaky_relu_approaches_relu():
    """γ = 0: max_x |φ_β(x) − relu(x)| = log(2)/β (attained at 0), so φ_β → ReLU as β → ∞."""
    x = torch.cat([torch.linspace(-5.0, 5.0, 100_001, dtype=torch.float64), torch.zeros(1)])
    errors = []
    for beta in (1.0, 10.0, 100.0, 1e3, 1e4, 1e5):
        gap = (SmoothLeakyReLU(beta, gamma=0.0)(x) - F.relu(x)).abs().max().item()
        assert gap == pytest.approx(math.log(2) / beta, rel=1e-9), beta
        errors.append(gap)
    assert all(a > b for a, b in pairwise(errors))
    assert errors[-1] < 1e-5


@pytest.mark.parametrize("kwargs", [{"beta": 0.0}, {"beta": -1.0}, {"gamma": -0.1}, {"gamma": 1.5}])
def test_smooth_leaky_relu_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        SmoothLeakyReLU(**kwargs)


# -------------------------------------------------------------------------------- sign


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    inputs=st.one_of(regression_inputs(-100.0, 100.0), classification_inputs()),
)
def test_ml3_is_non_negative(seed, inputs):
    loss = make_loss("ml3", seed, reduction="none")
    pred, target = inputs
    assert (loss(pred, target) >= 0).all()
    assert (loss.pointwise(pred, target) >= 0).all()


def test_lossnetwork_can_be_negative():
    """Unconstrained in sign (§2.2): seed 0's ϕ is negative somewhere on [-10, 10]²."""
    loss = make_loss("lossnet", 0, reduction="none")
    grid = torch.linspace(-10.0, 10.0, 41, dtype=torch.float64)
    p, t = torch.meshgrid(grid, grid, indexing="ij")
    with torch.no_grad():
        values = pointwise_values(loss, p.reshape(-1), t.reshape(-1))
    assert values.min() < 0 < values.max()


# ----------------------------------------------------------------- channels and reductions


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**31 - 1),
    inputs=st.one_of(regression_inputs(), classification_inputs()),
    data=st.data(),
)
def test_invariant_to_permuting_channels_with_targets(kind, seed, inputs, data):
    loss = make_loss(kind, seed, reduction="none")
    pred, target = inputs
    perm = torch.tensor(data.draw(st.permutations(range(pred.shape[1]))))
    with torch.no_grad():
        torch.testing.assert_close(
            loss(pred[:, perm], target[:, perm]), loss(pred, target), rtol=1e-12, atol=1e-12
        )


def test_permuting_pred_alone_changes_the_loss():
    """The permutation check has teeth: channels are paired with their own targets."""
    loss = make_loss("lossnet", 0, reduction="none")
    pred = torch.tensor([[0.1, 0.7, 0.2]], dtype=torch.float64)
    target = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(loss(pred[:, [1, 0, 2]], target), loss(pred, target))


@pytest.mark.parametrize("kind", KINDS)
def test_same_phi_serves_any_number_of_outputs(kind):
    """Eq. 3: M_ϕ is the channel mean of one ℓ_ϕ, for C = 1, 2, 10, 100 alike."""
    loss = make_loss(kind, 7, reduction="none")
    g = torch.Generator().manual_seed(0)
    for channels in (1, 2, 10, 100):
        pred = torch.rand(5, channels, generator=g, dtype=torch.float64) * 20 - 10
        target = torch.rand(5, channels, generator=g, dtype=torch.float64) * 20 - 10
        with torch.no_grad():
            value = loss(pred, target)
            per_channel = [loss(pred[:, c : c + 1], target[:, c : c + 1]) for c in range(channels)]
        assert value.shape == (5,)
        assert torch.isfinite(value).all()
        torch.testing.assert_close(value, torch.stack(per_channel).mean(dim=0))


@PROPERTY
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**31 - 1),
    inputs=st.one_of(regression_inputs(), classification_inputs()),
)
def test_reductions_agree(kind, seed, inputs):
    pred, target = inputs
    with torch.no_grad():
        none = make_loss(kind, seed, reduction="none")(pred, target)
        mean = make_loss(kind, seed, reduction="mean")(pred, target)
        total = make_loss(kind, seed, reduction="sum")(pred, target)
    assert none.shape == (pred.shape[0],)
    assert mean.shape == total.shape == ()
    torch.testing.assert_close(mean, none.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, none.sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_reduction_raises(kind):
    with pytest.raises(ValueError, match="reduction"):
        make_loss(kind, 0, reduction="max")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("pred_shape", "target_shape"),
    [((4, 3), (4, 2)), ((4, 3), (3, 3)), ((4, 3), (4, 3, 1)), ((4,), (4,)), ((4, 1), (4,))],
)
def test_mismatched_shapes_raise(kind, pred_shape, target_shape):
    loss = make_loss(kind, 0)
    pred = torch.zeros(pred_shape, dtype=torch.float64)
    target = torch.zeros(target_shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        loss(pred, target)


# ---------------------------------------------------------------------------- TaylorLoss


@pytest.mark.parametrize(
    ("degree", "monomials"),
    [
        (2, {(1, 0), (2, 0), (1, 1)}),
        (3, {(1, 0), (2, 0), (1, 1), (3, 0), (2, 1), (1, 2)}),
    ],
)
def test_taylor_terms(degree, monomials):
    """Prediction-dependent monomials (p−c_p)^i (t−c_t)^j, i ≥ 1, i + j ≤ degree; 2-d centre."""
    loss = TaylorLoss(degree)
    assert set(loss.exponents) == monomials
    assert len(loss.exponents) == len(monomials)  # 3 terms for degree 2, 6 for degree 3
    assert loss.coefficients.shape == (len(monomials),)
    assert loss.center.shape == (2,)
    assert sum(p.numel() for p in loss.parameters()) == len(monomials) + 2


@pytest.mark.parametrize("degree", [0, 1, 4])
def test_taylor_rejects_other_degrees(degree):
    with pytest.raises(ValueError, match="degree"):
        TaylorLoss(degree)


@PROPERTY
@given(degree=st.sampled_from([2, 3]), inputs=regression_inputs())
def test_untrained_taylor_is_squared_error_up_to_a_constant(degree, inputs):
    """Untrained: ℓ(p, t) = p² − 2pt = (p − t)² − t² (t² does not depend on the prediction)."""
    pred, target = inputs
    value = TaylorLoss(degree, reduction="none").double()(pred, target)
    expected = ((pred - target) ** 2 - target**2).mean(dim=1)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-10)


@PROPERTY
@given(degree=st.sampled_from([2, 3]), inputs=regression_inputs())
def test_untrained_taylor_gradient_is_squared_error_gradient(degree, inputs):
    """reduction "sum" over one example: ∂/∂p_c = 2(p_c − t_c)/C; "mean" divides by B too."""
    pred, target = inputs
    batch, channels = pred.shape
    for reduction, scale in (("sum", channels), ("mean", batch * channels)):
        loss = TaylorLoss(degree, reduction=reduction).double()
        if reduction == "sum":
            p = pred[:1].clone().requires_grad_(True)
            loss(p, target[:1]).backward()
            expected = 2 * (pred[:1] - target[:1]) / scale
        else:
            p = pred.clone().requires_grad_(True)
            loss(p, target).backward()
            expected = 2 * (pred - target) / scale
        torch.testing.assert_close(p.grad, expected, rtol=1e-12, atol=1e-12)


@PROPERTY
@given(
    degree=st.sampled_from([2, 3]),
    seed=st.integers(0, 2**31 - 1),
    p=st.floats(-10.0, 10.0),
    t=st.floats(-10.0, 10.0),
)
def test_taylor_polynomial_with_random_phi(degree, seed, p, t):
    """ℓ(p, t) = Σ c_ij (p − c_p)^i (t − c_t)^j, evaluated independently in Python floats."""
    loss = make_loss(f"taylor{degree}", seed, reduction="none")
    cp, ct = loss.center.tolist()
    coeffs = loss.coefficients.tolist()
    expected = sum(
        c * (p - cp) ** i * (t - ct) ** j for c, (i, j) in zip(coeffs, loss.exponents, strict=True)
    )
    value = loss(torch.tensor([[p]], dtype=torch.float64), torch.tensor([[t]], dtype=torch.float64))
    assert value.item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_taylor_parameter_gradients_at_the_centre():
    """Targets equal to the centre (one-hot zeros) give finite, exact ϕ-gradients (no 0·∞)."""
    loss = TaylorLoss(3, reduction="mean").double()
    pred = torch.tensor([[0.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    target = torch.zeros_like(pred)
    loss(pred, target).backward()
    # ∂/∂c_ij = mean of (p−0)^i (t−0)^j: only the j = 0 terms are non-zero
    expected = [
        (pred**i * target**j).mean().item() for i, j in loss.exponents
    ]  # p: 0.75, p²: 1.25, p³: 2.25
    torch.testing.assert_close(loss.coefficients.grad, torch.tensor(expected, dtype=torch.float64))
    # ∂/∂c_p = −mean(2p − 2t) at the untrained coefficients; ∂/∂c_t = −mean(−2p)
    torch.testing.assert_close(
        loss.center.grad, torch.tensor([-1.5, 1.5], dtype=torch.float64), rtol=1e-12, atol=1e-12
    )


def test_anchored_loss_network_is_stationary_at_the_target():
    """anchored=True: zero value and zero slope at p = t for every ϕ, still learnable."""
    for seed in range(5):
        torch.manual_seed(seed)
        loss = LossNetwork(anchored=True).double()
        target = torch.rand(8, 3, dtype=torch.float64)
        pred = target.clone().requires_grad_()
        value = loss(pred, target)
        (slope,) = torch.autograd.grad(value, pred)
        assert abs(float(value.detach())) < 1e-12 and float(slope.abs().max()) < 1e-12
        away = loss(target + 0.3, target)
        assert abs(float(away.detach())) > 1e-8  # not trivially zero elsewhere
        grads = torch.autograd.grad(away, list(loss.parameters()), allow_unused=True)
        assert any(g is not None and float(g.abs().max()) > 0 for g in grads)
    with torch.no_grad():  # evaluation without autograd still works and keeps no graph
        assert loss(target + 0.3, target).grad_fn is None


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1), inputs=arrays(np.float64, (2, 64), elements=st.floats(-10, 10))
)
def test_monotone_loss_pulls_every_prediction_toward_its_target(seed, inputs):
    """For every ϕ: ℓ(t, t) = 0 ≤ ℓ(p, t), and ∂ℓ/∂p has the sign of p − t (no tilt, no
    minimum away from the target), whatever the target."""
    loss = make_loss("monotone", seed, reduction="none")
    p, t = (torch.from_numpy(row) for row in inputs)
    slope = dloss_dpred(loss, p, t)
    e = p - t
    assert bool((slope * e >= 0).all())
    assert bool((slope[e.abs() > 1e-3].abs() > 0).all())
    values = loss(p.reshape(-1, 1), t.reshape(-1, 1))
    assert bool((values >= 0).all())
    assert float(loss(t.reshape(-1, 1), t.reshape(-1, 1)).detach().abs().max()) == 0.0


def test_the_monotone_ramp_is_the_softplus_difference_on_both_sides_of_its_switch():
    u = torch.cat([torch.zeros(1), torch.logspace(-8, 2.5, 200)]).double()
    gamma = torch.linspace(-8, 2, 8, dtype=torch.float64).reshape(-1, 1)
    plain = F.softplus(u + gamma) - F.softplus(gamma)
    rise = _softplus_rise(u, gamma)
    assert torch.allclose(rise, plain, rtol=1e-9, atol=1e-12)
    assert bool((rise[:, 0] == 0).all()) and bool((rise[:, 1:] > 0).all())
    u32 = torch.tensor([0.0, 30.0, 300.0], requires_grad=True)  # past float32's expm1 range
    rise32 = _softplus_rise(u32, torch.tensor(0.5))
    (grad,) = torch.autograd.grad(rise32.sum(), u32)
    assert bool(torch.isfinite(rise32).all()) and bool(torch.isfinite(grad).all())


def test_monotone_loss_starts_near_the_squared_error():
    torch.manual_seed(0)
    loss = MonotoneLossNetwork().double()
    t = torch.rand(256, 1, dtype=torch.float64)
    p = t + torch.linspace(-1, 1, 256, dtype=torch.float64).reshape(-1, 1)
    relative = (loss.pointwise(p, t) - (p - t) ** 2).norm() / ((p - t) ** 2).norm()
    assert float(relative.detach()) < 0.05
