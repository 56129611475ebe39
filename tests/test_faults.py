"""Fault injection: an exception at any stage of a step leaves everything bit-identical.

A fault is armed at one stage (training forward, learned loss, base backward, base
update, validation forward, JVP re-run, meta step, checkpoint load) on each path (the
forward and unroll engines, online=False, the plain steps of meta_every > 1, the
offline initialize()). The full state (θ and their gradients, every buffer, both
optimizers' states, ϕ, the counters, the RNG) is compared bit for bit before and after,
then the next step is compared with a twin's that never failed.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import paper_optimizer
from torch import nn

import adaloss


class Injected(RuntimeError):
    pass


ERRORS = [Injected("injected"), KeyboardInterrupt()]


class Fault(nn.Module):
    """Identity that raises on its ``at``-th forward call or ``backward_at``-th backward."""

    def __init__(self) -> None:
        super().__init__()
        self.arm()

    def arm(self, at=None, backward_at=None, error=None) -> None:
        self.at, self.backward_at, self.error = at, backward_at, error or Injected("injected")
        self.calls = self.backward_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise self.error
        if self.backward_at is not None and x.requires_grad and torch.is_grad_enabled():
            x.register_hook(self._backward)
        return x

    def _backward(self, grad: torch.Tensor) -> None:
        self.backward_calls += 1
        if self.backward_calls == self.backward_at:
            raise self.error


class FaultyLoss(nn.Module):
    """The default learned loss, raising when armed."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = adaloss.LossNetwork()
        self.error: BaseException | None = None

    def forward(self, pred, target):
        if self.error is not None:
            raise self.error
        return self.inner(pred, target)


def model() -> nn.Module:
    # BatchNorm (running stats, num_batches_tracked) and dropout (RNG) before the fault.
    return nn.Sequential(
        nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Dropout(0.2), Fault(),
        nn.Linear(12, 3),
    ).double()  # fmt: skip


def fault_of(opt) -> Fault:
    return opt.model[4]


PATHS = {  # name: (constructor options, steps taken before the faulty one)
    "forward": (dict(hypergrad="forward"), 2),
    "unroll": (dict(hypergrad="unroll"), 2),
    "offline": (dict(online=False), 2),
    "meta_every": (dict(meta_every=2), 3),  # step 3 is a plain step
}
BASES = {
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
}


def data(seed: int):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(8, 6, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (8,), generator=g),
        torch.randn(8, 6, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (8,), generator=g),
    )


def build(path: str, base: str = "momentum"):
    options, pre_steps = PATHS[path]
    torch.manual_seed(0)
    net = model()
    torch.manual_seed(1)
    loss = FaultyLoss().double()
    opt = paper_optimizer(  # M_ϕ exactly as built, no guard
        net, BASES[base](net.parameters()), adaloss.Classification(3), loss=loss, meta_lr=1e-3,
        **options,
    )  # fmt: skip
    for i in range(pre_steps):
        torch.manual_seed(10 + i)
        opt.step(*data(i))
    return opt


# -- a full snapshot, compared exactly -------------------------------------------------------
def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return copy.deepcopy(value)


def snapshot(opt) -> dict:
    m = opt.model
    return _clone(
        {
            "params": dict(m.named_parameters()),
            "grads": {n: p.grad for n, p in m.named_parameters()},
            "buffers": dict(m.named_buffers()),
            "base": opt.base_optimizer.state_dict(),
            "phi": list(opt.meta_params),
            "phi_grads": [p.grad for p in opt.meta_params],
            "meta": opt.meta_optimizer.state_dict(),
            "attrs": {
                k: v
                for k, v in vars(opt).items()
                if isinstance(v, (int, float, bool, str, type(None)))
            },
            "rng": torch.get_rng_state(),
        }
    )


def assert_identical(a, b, where: str = "") -> None:
    """Equal bit for bit: tensors by torch.equal (and dtype), containers recursively."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {a.keys()} {b.keys()}"
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_next_step_matches_twin(opt, path: str, base: str = "momentum") -> None:
    twin = build(path, base)
    assert_identical(snapshot(opt)["params"], snapshot(twin)["params"], "before")
    for o in (opt, twin):
        torch.manual_seed(99)
        o.step(*data(7))
    assert_identical(snapshot(opt), snapshot(twin), "next step")


# -- the stages ------------------------------------------------------------------------------
def _raise_after(function, error):
    def wrapped(*args, **kwargs):
        function(*args, **kwargs)
        raise error

    return wrapped


def arm(opt, stage: str, error: BaseException) -> None:
    """Make the next step raise ``error`` at ``stage``."""
    fault = fault_of(opt)
    if stage == "training forward":
        fault.arm(at=1, error=error)
    elif stage == "validation forward":
        fault.arm(at=2, error=error)
    elif stage == "JVP re-run":
        fault.arm(at=3, error=error)
    elif stage == "base backward":
        fault.arm(backward_at=1, error=error)
    elif stage == "learned loss":
        opt.loss.error = error
    elif stage == "base update":
        if opt.online and opt.steps % opt.meta_every == 0:  # after θ and the state are written
            opt.update.commit = _raise_after(opt.update.commit, error)
        else:  # after torch's kernels wrote θ and the state in place
            opt.base_optimizer.register_step_post_hook(lambda *args: (_ for _ in ()).throw(error))
    elif stage == "meta step":  # after Adam wrote ϕ and its moments
        opt.meta_optimizer.register_step_post_hook(lambda *args: (_ for _ in ()).throw(error))
    else:
        raise AssertionError(stage)


def disarm(opt) -> None:
    fault_of(opt).arm()
    opt.loss.error = None
    opt.base_optimizer._optimizer_step_post_hooks.clear()
    opt.meta_optimizer._optimizer_step_post_hooks.clear()
    opt.update.__dict__.pop("commit", None)


META_STAGES = [
    "training forward", "learned loss", "base backward", "base update", "validation forward",
    "meta step",
]  # fmt: skip
PLAIN_STAGES = ["training forward", "learned loss", "base backward", "base update"]
CASES = (
    [("forward", s) for s in [*META_STAGES, "JVP re-run"]]
    + [("unroll", s) for s in META_STAGES]
    + [("offline", s) for s in PLAIN_STAGES]
    + [("meta_every", s) for s in PLAIN_STAGES]
)


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("error", ERRORS, ids=["error", "ctrl-c"])
@pytest.mark.parametrize("path, stage", CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_a_fault_at_any_stage_changes_nothing(path, stage, error, base):
    opt = build(path, base)
    torch.manual_seed(50)
    before = snapshot(opt)
    arm(opt, stage, error)
    with pytest.raises(type(error)):
        opt.step(*data(5))
    disarm(opt)
    assert_identical(before, snapshot(opt), f"after a fault at {stage}")
    assert_next_step_matches_twin(opt, path, base)


@pytest.mark.parametrize("path", list(PATHS))
def test_batchnorm_refusing_a_batch_of_one_changes_nothing(path):
    """torch's own "Expected more than 1 value per channel" comes after num_batches_tracked += 1."""
    opt = build(path)
    before = snapshot(opt)
    x, y, xv, yv = data(5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        opt.step(x[:1], y[:1], xv, yv)
    assert_identical(before, snapshot(opt))
    assert_next_step_matches_twin(opt, path)


def test_a_users_not_implemented_error_in_the_jvp_rerun_is_not_a_missing_forward_rule():
    opt = build("forward")
    before = snapshot(opt)
    arm(opt, "JVP re-run", NotImplementedError("my layer has no eval mode"))
    with pytest.raises(NotImplementedError, match="my layer"):
        opt.step(*data(5))
    disarm(opt)
    assert opt.hypergrad == "forward"  # no fall-back to unroll
    assert_identical(before, snapshot(opt))


@pytest.mark.parametrize("error", ERRORS, ids=["error", "ctrl-c"])
@pytest.mark.parametrize("at", [1, 2, 3, 4], ids=["forward", "validation", "jvp", "2nd-outer"])
def test_a_fault_during_initialize_changes_nothing(at, error):
    """Outer step 2's training forward (call 4) fails after ϕ already took a step."""
    opt = build("forward")
    batches = [data(i)[:2] for i in range(3)]
    torch.manual_seed(50)
    before = snapshot(opt)
    fault_of(opt).arm(at=at, error=error)
    with pytest.raises(type(error)):
        opt.initialize(batches, steps=3)
    disarm(opt)
    assert_identical(before, snapshot(opt), "after a fault in initialize()")
    twin = build("forward")
    for o in (opt, twin):
        torch.manual_seed(98)
        o.initialize(batches, steps=3)
    assert_identical(snapshot(opt), snapshot(twin), "initialize() after the fault")
    for o in (opt, twin):
        torch.manual_seed(99)
        o.step(*data(7))
    assert_identical(snapshot(opt), snapshot(twin), "the next step")


def test_initialize_leaves_model_and_base_state_as_they_started():
    opt = build("forward", "adam")
    before = snapshot(opt)
    opt.initialize([data(i)[:2] for i in range(3)], steps=3)
    after = snapshot(opt)
    for key in ("params", "buffers", "base", "grads"):
        assert_identical(before[key], after[key], key)
    flat = [torch.cat([p.reshape(-1) for p in s["phi"]]) for s in (before, after)]
    assert not torch.equal(*flat)


# -- checkpoints -----------------------------------------------------------------------------
def _wider_checkpoint() -> dict:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(6, 24), nn.BatchNorm1d(24), nn.Tanh(), nn.Dropout(0.2), Fault(),
        nn.Linear(24, 3),
    ).double()  # fmt: skip
    opt = paper_optimizer(
        net,
        BASES["momentum"](net.parameters()),
        adaloss.Classification(3),
        loss=FaultyLoss().double(),
    )
    opt.step(*data(0))
    return opt.state_dict()


def _adam_checkpoint() -> dict:
    return build("forward", "adam").state_dict()


def _two_group_meta_checkpoint() -> dict:
    opt = build("forward")
    saved = opt.state_dict()
    groups = saved["meta_optimizer"]["param_groups"]
    first, rest = groups[0]["params"][:2], groups[0]["params"][2:]
    saved["meta_optimizer"]["param_groups"] = [
        {**groups[0], "params": first},
        {**groups[0], "params": rest},
    ]
    return saved


def _without(key):
    def make():
        saved = build("forward").state_dict()
        del saved[key]
        return saved

    return make


BAD_CHECKPOINTS = {
    "wider model": (_wider_checkpoint, r"shape \(24, 6\).*\(12, 6\)"),
    "adam into sgd": (_adam_checkpoint, "lacks 'momentum'"),
    "meta groups": (_two_group_meta_checkpoint, "meta_optimizer.*2 parameter group"),
    "missing counter": (_without("skipped_steps"), "lacks 'skipped_steps'"),
    "negative counter": (lambda: {**build("forward").state_dict(), "steps": -1}, "steps"),
    # loaded last, after the counters: a bad one must be refused before them
    "incomplete grad scale": (
        lambda: {**build("forward").state_dict(), "steps": 7, "grad_scale": {"scale": 1.0}},
        "grad_scale.*'good_steps'",
    ),
    "non-finite grad scale": (
        lambda: {
            **build("forward").state_dict(),
            "steps": 7,
            "grad_scale": {"scale": float("nan"), "good_steps": 0, "overflows": 0},
        },
        r"grad_scale'\]\['scale'\] must be a finite number",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_a_mismatched_checkpoint_is_refused_before_anything_changes(case):
    make, message = BAD_CHECKPOINTS[case]
    saved = make()
    opt = build("forward")
    before, counters = snapshot(opt), (opt.steps, opt.scaling.state_dict())
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    assert_identical(before, snapshot(opt))
    assert (opt.steps, opt.scaling.state_dict()) == counters
    assert_next_step_matches_twin(opt, "forward")


def test_sgd_checkpoint_into_adam_is_refused():
    saved = build("forward").state_dict()
    opt = build("forward", "adam")
    before = snapshot(opt)
    with pytest.raises(ValueError, match="lacks 'betas'"):
        opt.load_state_dict(saved)
    assert_identical(before, snapshot(opt))


@pytest.mark.parametrize("error", ERRORS, ids=["error", "ctrl-c"])
def test_a_fault_inside_checkpoint_loading_changes_nothing(error):
    """The meta optimizer's load raises after θ's optimizer state and ϕ were loaded."""
    saved = build("meta_every").state_dict()  # a valid checkpoint from elsewhere
    opt = build("forward")
    before = snapshot(opt)
    opt.meta_optimizer.register_load_state_dict_post_hook(lambda o: (_ for _ in ()).throw(error))
    with pytest.raises(type(error)):
        opt.load_state_dict(saved)
    opt.meta_optimizer._optimizer_load_state_dict_post_hooks.clear()
    assert_identical(before, snapshot(opt))
    assert_next_step_matches_twin(opt, "forward")


def test_a_checkpoint_round_trip_is_exact():
    opt, twin = build("forward", "adam"), build("meta_every", "adam")
    twin.load_state_dict(opt.state_dict())
    twin.model.load_state_dict(opt.model.state_dict())
    a, b = snapshot(opt), snapshot(twin)
    for key in ("params", "buffers", "base", "phi", "meta"):
        assert_identical(a[key], b[key], key)
    assert twin.steps == opt.steps and twin.skipped_steps == opt.skipped_steps


# -- refused before anything runs ------------------------------------------------------------
def test_a_model_with_nothing_to_train_is_refused_when_the_wrapper_is_built():
    net = model()
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        paper_optimizer(net, torch.optim.SGD(net.parameters(), lr=0.1), adaloss.Classification(3))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: torch.optim.Adam(p, capturable=True), "capturable=True.*CPU"),
        (lambda p: torch.optim.SGD(p, lr=0.1, differentiable=True), "differentiable=True"),
    ],
    ids=["capturable", "differentiable"],
)
def test_unsupported_flags_are_refused_when_the_wrapper_is_built(make, message):
    net = model()
    with pytest.raises(TypeError, match=message):
        paper_optimizer(net, make(net.parameters()), adaloss.Classification(3))


def test_a_batch_of_another_dtype_is_refused_naming_both():
    opt = build("forward")
    before = snapshot(opt)
    x, y, xv, yv = data(5)
    with pytest.raises(
        ValueError, match="x has dtype torch.float32 but the model's parameters are torch.float64"
    ):
        opt.step(x.float(), y)
    with pytest.raises(ValueError, match="x_val has dtype torch.float32"):
        opt.step(x, y, xv.float(), yv)
    assert_identical(before, snapshot(opt))


def test_a_batch_on_another_device_is_refused_naming_both():
    opt = build("forward")
    before = snapshot(opt)
    x, y, _, _ = data(5)
    with pytest.raises(ValueError, match="x is on meta but the model's parameters are on cpu"):
        opt.step(x.to("meta"), y)
    with pytest.raises(ValueError, match="y is on meta"):
        opt.step(x, y.to("meta"))
    assert_identical(before, snapshot(opt))


def test_a_compiled_model_under_unroll_is_refused_with_a_clear_message():
    net = torch.compile(model())  # lazy: nothing is compiled until it is called
    with pytest.raises(ValueError, match="compiled.*double backward.*hypergrad='forward'"):
        paper_optimizer(
            net, torch.optim.SGD(net.parameters(), lr=0.1), adaloss.Classification(3),
            hypergrad="unroll",
        )  # fmt: skip


class NoJvp(torch.autograd.Function):
    """Identity with a backward but no forward-mode rule: the forward engine falls back."""

    @staticmethod
    def forward(x):
        return x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad


class NoJvpLayer(nn.Module):
    def forward(self, x):
        return NoJvp.apply(x)


def test_a_fault_after_the_fall_back_restores_the_engine_too():
    """The switch to unroll is part of the step: a step that fails keeps 'forward'."""
    opt = build("forward")
    opt.model.append(NoJvpLayer())
    before = snapshot(opt)
    fault_of(opt).arm(at=5)  # 1-3: forward engine (the JVP fails); 4-5: the redo with unroll
    with pytest.warns(RuntimeWarning, match="forward-mode"), pytest.raises(Injected):
        opt.step(*data(5))
    disarm(opt)
    assert opt.hypergrad == "forward"
    assert_identical(before, snapshot(opt))
    with pytest.warns(RuntimeWarning, match="forward-mode"):
        opt.step(*data(5))
    assert opt.hypergrad == "unroll"


class SometimesBroken(nn.Module):
    """The default learned loss; on its ``broken``-th call the meta-gradient is infinite."""

    def __init__(self, broken: int | None) -> None:
        super().__init__()
        self.inner = adaloss.LossNetwork().double()
        self.scale = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.broken, self.calls = broken, 0

    def forward(self, pred, target):
        self.calls += 1
        loss = self.inner(pred, target)
        if self.calls == self.broken:  # ∂/∂s of sqrt(s - s) at 0 is infinite; loss and g are not
            return loss + (pred * torch.sqrt(self.scale - self.scale.detach())).sum()
        return loss


def test_initialize_skips_non_finite_outer_steps_without_a_trace():
    """Skipping outer step 2 of 3 equals running outer steps 1 and 3 alone."""
    batches = [data(i)[:2] for i in range(3)]
    runs = []
    for broken, used in ((2, batches), (None, [batches[0], batches[2]])):
        torch.manual_seed(0)
        net = model()
        net[3].p = 0.0  # no dropout: the skipped step must not shift the masks of the next
        torch.manual_seed(1)
        opt = paper_optimizer(
            net, BASES["momentum"](net.parameters()), adaloss.Classification(3),
            loss=SometimesBroken(broken),
        )  # fmt: skip
        torch.manual_seed(3)
        if broken:
            with pytest.warns(RuntimeWarning, match="skipped 1 of 3"):
                losses = opt.initialize(used, steps=3)
        else:
            losses = opt.initialize(used, steps=2)
        runs.append((losses, [p.detach().clone() for p in opt.meta_params]))
    assert len(runs[0][0]) == 2 and runs[0][0] == runs[1][0]
    assert_identical(runs[0][1], runs[1][1], "ϕ")
