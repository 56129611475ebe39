"""How often a step reads a tensor on the host (a device sync on a GPU) when nothing is wrong.

A step keeps exactly two reads: the input check (all value checks of x, y, x_val, y_val in
one) and the commit decision (the finiteness of everything the step would write, with the
task loss for the divergence watch). The second stays because a rejected step must change
nothing, host state included (counters, the meta optimizer's step count, the warning);
``adaloss/online.py`` says more. On the CPU the reads are counted by patching the Python
methods that turn a tensor into a host value; on a CUDA device torch's sync debug mode
counts every synchronizing call. The learned step length (``learn_lr``, the default's on
classification) reads r once more on a step without a meta step (``meta_every`` > 1).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import pytest
import torch
from conftest import batches, make_model

import adaloss

HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
SYNCS_PER_STEP = 2


@contextmanager
def counting_host_reads(ignore=()):
    """Count calls of the methods that read a tensor's values on the host.

    ``ignore``: tensors whose reads don't count (torch.optim keeps its ``step`` counts in
    CPU tensors and reads them with ``.item()`` even for CUDA parameters: not a device sync).
    """
    ignored = {id(t) for t in ignore}
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counted(name):
        original = originals[name]

        def wrapper(self, *args, **kwargs):
            if id(self) not in ignored:
                calls.append(name)
            return original(self, *args, **kwargs)

        return wrapper

    for name in HOST_READS:
        setattr(torch.Tensor, name, counted(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _optimizer_steps(*optimizers):
    return [
        state["step"]
        for opt in optimizers
        if opt is not None
        for state in opt.state.values()
        if isinstance(state.get("step"), torch.Tensor)
    ]


def _opt(device, dtype=torch.float64, **kwargs):
    model = make_model("bn_cnn").to(device=device, dtype=dtype)
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3), **kwargs)


def _batches(device, dtype=torch.float64):
    return [
        (x.to(device, dtype), y.to(device)) for x, y in batches((1, 8, 8), 4, dtype=torch.float64)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [{"handover": False, "learn_lr": False}, {"handover": False, "guard": False, "learn_lr": False},
     {"handover": False, "hypergrad": "unroll", "learn_lr": False}, {"recipe": "paper"},
     {"learn_lr": False}, {}],
    ids=["unchecked", "no_guard", "unroll", "paper", "default_network", "default"],
)  # fmt: skip
def test_a_step_reads_the_device_twice(kwargs):
    """Meta steps and the plain learned-loss steps between them (meta_every=2); the
    default's plain-trained twin reads once more per step (its own step's finiteness), and
    its learned step length (on classification) reads r once more on a step without a meta
    step, for the base optimizer's own lr (a meta step's update takes r on the device)."""
    opt = _opt("cpu", meta_every=2, **kwargs)
    twin = SYNCS_PER_STEP + (opt.twin is not None)
    data = _batches("cpu")
    opt.step(*data[0], *data[1])  # the first step warm-starts ϕ (not a training step's cost)
    opt.step(*data[1], *data[2])
    for i in range(4):
        (x, y), (xv, yv) = data[i % 4], data[(i + 1) % 4]
        ignore = _optimizer_steps(opt.base_optimizer, opt.meta_optimizer)
        with counting_host_reads(ignore) as calls:
            result = opt.step(x, y, xv, yv)
        assert not result.skipped
        plain_r = opt.step_length is not None and not result.meta_updated
        assert len(calls) == twin + plain_r, (opt.steps, calls)


def test_the_count_sees_a_host_read():
    """The counter is not blind: reading the guard's device counter is one more read."""
    opt = _opt("cpu")
    with counting_host_reads() as calls:
        opt.guarded_steps  # noqa: B018
    assert calls == ["__int__"]


def test_rejection_still_reads_only_what_it_needs():
    """A non-finite step is still rejected whole after the one commit read (plus the
    reads that name the culprit)."""
    opt = _opt("cpu", recipe="paper")
    data = _batches("cpu")
    opt.step(*data[0], *data[1])
    with torch.no_grad():
        opt.loss.net[-1].bias.fill_(float("nan"))
    before = [p.detach().clone() for p in opt.model.parameters()]
    with pytest.warns(RuntimeWarning, match="step rejected"):
        result = opt.step(*data[1], *data[2])
    assert result.skipped
    for p, b in zip(opt.model.parameters(), before, strict=True):
        assert torch.equal(p, b)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("meta_every", [1, 2])
def test_cuda_step_synchronizes_exactly_twice(meta_every):
    """torch's sync debug mode warns on every synchronizing CUDA call: a step makes two
    (without the learned step length, which reads r on steps without a meta step)."""
    opt = _opt("cuda", dtype=torch.float32, meta_every=meta_every, learn_lr=False)
    data = _batches("cuda", torch.float32)
    for i in range(3):  # warm start and warm-up
        opt.step(*data[i % 4], *data[(i + 1) % 4])
    torch.cuda.synchronize()
    for i in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                opt.step(*data[i % 4], *data[(i + 1) % 4])
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        assert len(syncs) == SYNCS_PER_STEP, [str(w.message)[:200] for w in syncs]


@pytest.mark.cuda
@cuda
def test_cuda_engines_agree():
    """The forward engine equals the unroll reference on a CUDA device (float64)."""
    data = _batches("cuda")
    grads = []
    for engine in ("forward", "unroll"):
        opt = _opt("cuda", recipe="paper", hypergrad=engine)
        grads.append(opt.meta_gradient(*data[0], *data[1]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_step_is_finite(dtype):
    """Steps under torch.autocast (the model's matmuls in half precision) stay finite."""
    opt = _opt("cuda", dtype=torch.float32)
    data = _batches("cuda", torch.float32)
    for i in range(4):
        with torch.autocast("cuda", dtype=dtype):
            result = opt.step(*data[i % 4], *data[(i + 1) % 4])
        assert not result.skipped
        assert torch.isfinite(result.learned_loss).item()
