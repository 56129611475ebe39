"""MetaLossOptimizer's behaviour: drop-in semantics, state, checkpoints, bad input."""

from __future__ import annotations

import copy
import gc
import warnings

import pytest
import torch
from conftest import (
    OPTIMIZERS,
    CrossEntropyOnProbabilities,
    batches,
    make_model,
    mlp,
    paper_optimizer,
)
from torch import nn

import adaloss

ENGINES = ["forward", "unroll"]


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def snapshot(opt: adaloss.MetaLossOptimizer) -> dict:
    """Everything a rejected step must leave unchanged."""
    return {
        "theta": flat(opt.model.parameters()).clone(),
        "buffers": [b.clone() for b in opt.model.buffers()],
        "phi": flat(opt.loss.parameters()).clone(),
        "base": copy.deepcopy(opt.base_optimizer.state_dict()),
        "meta": copy.deepcopy(opt.meta_optimizer.state_dict()),
        "steps": opt.steps,
    }


def assert_exactly_equal(a, b, where: str = "") -> None:
    """Tensors by torch.equal (every bit, not a 4-digit repr), containers recursively."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_exactly_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_exactly_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_unchanged(before: dict, opt: adaloss.MetaLossOptimizer) -> None:
    assert_exactly_equal(before, snapshot(opt))


# -- drop-in invariant -------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_task_loss_as_learned_loss_reproduces_torch(opt_name, engine, float64):
    """A parameter-free loss equal to cross-entropy gives torch.optim's own trajectory."""
    plain, wrapped = make_model("mlp"), make_model("mlp")
    plain_opt = OPTIMIZERS[opt_name](plain.parameters())
    opt = paper_optimizer(
        wrapped,
        OPTIMIZERS[opt_name](wrapped.parameters()),
        adaloss.Classification(3),
        loss=CrossEntropyOnProbabilities(),
        hypergrad=engine,
    )
    for x, y in batches((6,), 20):
        plain_opt.zero_grad()
        nn.functional.cross_entropy(plain(x), y).backward()
        plain_opt.step()
        opt.step(x, y)
    tol = 1e-5 if opt_name.startswith("adam") else 1e-10
    for a, b in zip(plain.parameters(), wrapped.parameters(), strict=True):
        assert torch.allclose(b, a, rtol=tol, atol=tol * float(a.detach().abs().max()))
    for p_plain, p_wrapped in zip(plain.parameters(), wrapped.parameters(), strict=True):
        for key, value in plain_opt.state[p_plain].items():  # torch's own state format
            assert torch.allclose(opt.state[p_wrapped][key].double(), value.double(), rtol=tol)


def test_param_groups_are_read_every_step_so_schedulers_work(float64):
    model = make_model("mlp")
    base = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": list(model[2].parameters()) + list(model[4].parameters()), "lr": 0.0},
        ]
    )
    opt = paper_optimizer(model, base, adaloss.Classification(3))
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.0 if epoch >= 1 else 1.0)
    assert opt.param_groups is base.param_groups
    frozen = flat(model[2].parameters()).clone()
    first = flat(model[0].parameters()).clone()
    data = batches((6,), 3)
    opt.step(*data[0])
    assert torch.equal(flat(model[2].parameters()), frozen)  # lr 0 group did not move
    assert not torch.equal(flat(model[0].parameters()), first)
    scheduler.step()  # lr -> 0 for every group
    moved = flat(model.parameters()).clone()
    opt.step(*data[1])
    assert torch.equal(flat(model.parameters()), moved)


def test_unsupported_optimizers_and_options_raise_type_error():
    model = mlp()
    for base in (
        torch.optim.Rprop(model.parameters()),
        torch.optim.RMSprop(model.parameters(), maximize=True),
        torch.optim.Adam(model.parameters(), amsgrad=True),
        torch.optim.SGD(model.parameters(), lr=0.1, maximize=True),
    ):
        with pytest.raises(TypeError, match="supports torch.optim.SGD"):
            paper_optimizer(model, base, adaloss.Classification(3))


def test_optimizer_over_foreign_tensors_is_rejected():
    model, other = mlp(), mlp()
    with pytest.raises(ValueError, match="not parameters of the model"):
        paper_optimizer(
            model, torch.optim.SGD(other.parameters(), lr=0.1), adaloss.Classification(3)
        )


# -- what a step leaves behind -----------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_parameters_stay_leaves_and_no_graph_survives(engine):
    torch.manual_seed(0)
    model = mlp()
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), adaloss.Classification(3),
        hypergrad=engine,
    )  # fmt: skip
    data = batches((6,), 2, dtype=torch.float32)

    def live_tensors() -> int:
        gc.collect()
        # type(), not is_tensor(): isinstance reads __class__, which torch.distributed's
        # deprecated reduce_op answers with a FutureWarning
        return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))

    for _ in range(20):
        opt.step(*data[0], *data[1])
    after_20 = live_tensors()
    for _ in range(200):
        result = opt.step(*data[0], *data[1])
    del result
    assert live_tensors() == after_20  # memory is flat: nothing accumulates per step
    result = opt.step(*data[0], *data[1])
    assert result.learned_loss.grad_fn is None and result.task_loss.grad_fn is None
    for p in model.parameters():
        assert isinstance(p, nn.Parameter) and p.is_leaf and p.grad_fn is None
    for state in opt.state.values():
        assert state["momentum_buffer"].grad_fn is None


@pytest.mark.parametrize("engine", ENGINES)
def test_batchnorm_statistics_update_once_per_step(engine, float64):
    model, twin = make_model("bn_cnn"), make_model("bn_cnn")
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
        hypergrad=engine,
    )  # fmt: skip
    x, y = batches((1, 8, 8), 1)[0]
    xv, yv = batches((1, 8, 8), 1, seed=9)[0]
    opt.step(x, y, xv, yv)
    twin(x)  # exactly one training forward on x
    for (name, a), b in zip(model.named_buffers(), twin.buffers(), strict=True):
        assert torch.equal(a, b), name


def test_meta_every_updates_phi_on_every_kth_step_only(float64):
    model = make_model("mlp")
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
        meta_lr=1e-2, meta_every=3,
    )  # fmt: skip
    flags = []
    for x, y in batches((6,), 7):
        phi = flat(opt.loss.parameters()).clone()
        theta = flat(model.parameters()).clone()
        result = opt.step(x, y)
        flags.append(result.meta_updated)
        assert result.meta_updated == (not torch.equal(phi, flat(opt.loss.parameters())))
        assert not torch.equal(theta, flat(model.parameters()))  # θ moves every step
    assert flags == [True, False, False, True, False, False, True]


def test_training_variant_and_frozen_loss(float64):
    model = make_model("mlp")
    online = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3), meta_lr=1e-2
    )
    x, y = batches((6,), 1)[0]
    result = online.step(x, y)  # no validation batch: meta-objective on x, y
    assert result.meta_updated and result.task_loss is not None
    frozen = make_model("mlp")
    ml3 = paper_optimizer(
        frozen, torch.optim.SGD(frozen.parameters(), lr=0.1), adaloss.Classification(3),
        online=False,
    )  # fmt: skip
    phi = flat(ml3.loss.parameters()).clone()
    for x, y in batches((6,), 3):
        assert not ml3.step(x, y).meta_updated
    assert torch.equal(phi, flat(ml3.loss.parameters()))


def test_default_loss_follows_model_dtype():
    model = mlp().double()
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3)
    )
    assert all(p.dtype == torch.float64 for p in opt.loss.parameters())


# -- checkpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
@pytest.mark.parametrize("engine", ENGINES)
def test_state_dict_round_trip_continues_the_same_trajectory(engine, opt_name, float64):
    data = batches((6,), 20)

    def build():
        model = make_model("mlp")
        torch.manual_seed(5)
        opt = paper_optimizer(
            model, OPTIMIZERS[opt_name](model.parameters()), adaloss.Classification(3),
            meta_lr=1e-3, hypergrad=engine,
        )  # fmt: skip
        return model, opt

    model, opt = build()
    for x, y in data:
        opt.step(x, y, *data[0])
    model_a, opt_a = build()
    for x, y in data[:10]:
        opt_a.step(x, y, *data[0])
    saved = copy.deepcopy((model_a.state_dict(), opt_a.state_dict()))
    del model_a, opt_a
    model_b, opt_b = build()  # rebuilt from scratch
    model_b.load_state_dict(saved[0])
    opt_b.load_state_dict(saved[1])
    for x, y in data[10:]:
        opt_b.step(x, y, *data[0])
    assert torch.allclose(flat(model_b.parameters()), flat(model.parameters()), rtol=0, atol=1e-12)
    assert torch.allclose(flat(opt_b.loss.parameters()), flat(opt.loss.parameters()), atol=1e-12)
    assert opt_b.steps == opt.steps == 20


def test_load_state_dict_rejects_another_loss_shape():
    model = mlp()
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3)
    )
    other = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), adaloss.Classification(3),
        loss=adaloss.LossNetwork(hidden=(8,)),
    )  # fmt: skip
    with pytest.raises(ValueError, match="meta-parameters do not match"):
        opt.load_state_dict(other.state_dict())


def test_a_regression_checkpoint_of_the_network_loss_names_the_loss_and_changes_nothing():
    """A checkpoint from before session 28 (the network loss on regression) does not load
    into today's default, says why, and loads with ``loss=LossNetwork()``."""
    torch.manual_seed(0)
    model = make_model("mlp")

    def built(**options):
        return adaloss.MetaLossOptimizer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                         adaloss.Regression(3), **options)  # fmt: skip

    saved = built(loss=adaloss.LossNetwork()).state_dict()
    today = built()
    before = copy.deepcopy(today.state_dict())
    with pytest.raises(ValueError, match="saved with another learned loss"):
        today.load_state_dict(saved)
    assert_exactly_equal(today.state_dict(), before)
    built(loss=adaloss.LossNetwork()).load_state_dict(saved)


# -- bad input, nothing lost -------------------------------------------------------------
def _bn_optimizer(engine="forward"):
    model = make_model("bn_cnn", dtype=torch.float32)
    torch.manual_seed(1)
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        adaloss.Classification(3), meta_lr=1e-3, hypergrad=engine,
    )  # fmt: skip
    x, y = batches((1, 8, 8), 1, dtype=torch.float32)[0]
    opt.step(x, y)  # non-empty optimizer states
    return opt, x, y


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, y: (x[:-1], y), "batch size"),
        (lambda x, y: (x, y + 3), r"\[0, 2\]"),
        (lambda x, y: (x, y.double()), "integer"),
        (lambda x, y: (x, y[:, None]), r"shape \(B,\)"),
        (lambda x, y: (x.clone().index_fill_(0, torch.tensor([0]), float("nan")), y), "finite"),
        (lambda x, y: (x.clone().index_fill_(0, torch.tensor([1]), float("inf")), y), "finite"),
        (lambda x, y: ([[1.0]], y), "torch.Tensor"),
    ],
)
def test_bad_input_raises_before_anything_changes(mutate, message):
    opt, x, y = _bn_optimizer()
    before = snapshot(opt)
    bad_x, bad_y = mutate(x, y)
    with pytest.raises(ValueError, match=message):
        opt.step(bad_x, bad_y)
    with pytest.raises(ValueError, match=message):
        opt.step(x, y, bad_x, bad_y)  # the validation batch is checked too
    assert_unchanged(before, opt)


def test_wrong_output_channels_raise_and_restore_batchnorm():
    opt, x, y = _bn_optimizer()
    opt.task = adaloss.Classification(5)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"expects model outputs of shape \(8, 5\); got \(8, 3\)"):
        opt.step(x, y)
    assert_unchanged(before, opt)


def test_validation_pair_must_be_complete():
    opt, x, y = _bn_optimizer()
    with pytest.raises(ValueError, match="both x_val and y_val"):
        opt.step(x, y, x, None)


class NaNGradient(torch.autograd.Function):
    """Identity whose gradient is NaN (differentiable, so unroll's double backward works)."""

    @staticmethod
    def forward(x):
        return x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class BrokenLoss(nn.Module):
    """Finite on ordinary inputs; ``mode`` selects which quantity becomes non-finite."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.inner = adaloss.LossNetwork()
        self.mode = mode
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, pred, target):
        loss = self.inner(pred, target)
        if self.mode == "loss":
            return loss + torch.log(self.scale)  # -inf
        if self.mode == "base_grad":  # a finite loss whose gradient w.r.t. pred is NaN
            return self.inner(NaNGradient.apply(pred), target)
        if self.mode == "new_params":  # finite loss and gradient; the step overflows θ
            return loss
        # meta_grad: ∂/∂s of ∂M/∂pred = ∂/∂s sqrt(s - s) is infinite; loss and g are not
        return loss + (pred * torch.sqrt(self.scale - self.scale.detach())).sum()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "mode, culprit",
    [
        ("loss", "the learned loss"),
        ("base_grad", "the base gradient"),
        ("new_params", "the updated parameters"),
        ("meta_grad", "the meta-gradient"),
    ],
)
def test_non_finite_step_is_rejected_whole(mode, culprit, engine):
    """Each fault is injected where its own branch catches it: the warning names it."""
    opt, x, y = _bn_optimizer(engine)
    opt.loss = BrokenLoss(mode)
    opt.meta_params = list(opt.loss.parameters())
    opt.meta_optimizer = torch.optim.Adam(opt.meta_params, lr=1e-3)
    if mode == "new_params":
        for group in opt.param_groups:
            group["lr"] = float("inf")  # θ - lr·g is not finite while g is
    before = snapshot(opt)
    with pytest.warns(RuntimeWarning, match=f"step rejected, {culprit} is not finite"):
        result = opt.step(x, y)
    assert result.skipped and not result.meta_updated
    assert opt.skipped_steps == 1
    assert_unchanged(before, opt)


@pytest.mark.parametrize(
    "mode, culprit", [("loss", "the learned loss"), ("base_grad", "the base gradient")]
)
def test_non_finite_plain_step_is_rejected_too(mode, culprit):
    opt, x, y = _bn_optimizer()
    opt.meta_every = 2  # step 1 is a plain base step
    opt.loss = BrokenLoss(mode)
    before = snapshot(opt)
    with pytest.warns(RuntimeWarning, match=f"step rejected, {culprit} is not finite"):
        assert opt.step(x, y).skipped
    assert_unchanged(before, opt)


def test_a_run_stuck_on_rejections_is_told_at_1_10_100_skips_not_every_step():
    """A step rejected over and over (θ blown up) used to print one warning per step."""
    opt, x, y = _bn_optimizer()
    opt.loss = BrokenLoss("loss")
    told = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(120):
            assert opt.step(x, y).skipped
        told = [str(w.message) for w in caught if "step rejected" in str(w.message)]
    assert opt.skipped_steps == 120
    assert [m.split("(")[1].split(" skipped")[0] for m in told] == ["1", "10", "100"]


# -- end to end --------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_adalfl_training_reduces_the_task_loss(engine):
    """Digits-like toy problem: a linearly separable 4-class task in 2-D."""
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])
    y = torch.randint(0, 4, (512,), generator=g)
    x = centers[y] + 0.7 * torch.randn(512, 2, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 4))
    task = adaloss.Classification(4)
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), task, meta_lr=1e-3, hypergrad=engine
    )
    opt.initialize([(x[:64], y[:64])], [(x[64:128], y[64:128])], steps=30)
    before = float(task.loss(model(x[256:]), y[256:]).detach())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(150):
            batch = slice((i * 32) % 256, (i * 32) % 256 + 32)
            result = opt.step(x[batch], y[batch], x[256:320], y[256:320])
            assert not result.skipped
    assert not [w for w in caught if "may be diverging" in str(w.message)]  # no false alarm
    after = float(task.loss(model(x[256:]), y[256:]).detach())
    assert after < 0.5 * before
    assert float(task.error(model(x[256:]), y[256:]).detach()) < 0.1


class Repelling(nn.Module):
    """A 'learned' loss that rewards moving away from the target (a diverging run)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, pred, target):
        return -self.scale * ((pred - target) ** 2).mean()


def test_a_diverging_run_is_reported_while_values_are_still_finite():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = paper_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.2), adaloss.Regression(1),
        loss=Repelling(), meta_lr=0.0,
    )  # fmt: skip
    x, y = torch.randn(16, 3), torch.rand(16, 1)
    with pytest.warns(RuntimeWarning, match="may be diverging") as caught:
        for _ in range(60):
            result = opt.step(x, y)
    assert torch.isfinite(result.task_loss)
    warned = [w for w in caught if "may be diverging" in str(w.message)]
    assert len(warned) == 1  # warned once
    assert warned[0].filename == __file__  # it names the user's call of step, not adaloss
    assert "the guard" in str(warned[0].message)  # advice for a learned loss


def test_the_divergence_warning_gives_each_meta_learner_its_own_advice():
    from adaloss.divergence import DivergenceWatch

    assert "meta_lr" in adaloss.MetaLROptimizer.divergence_advice  # it has no guard
    watch = DivergenceWatch("advice X")
    with pytest.warns(RuntimeWarning, match=r"may be diverging \(advice X; see BENCHMARKS.md\)"):
        for value in (1.0, 1.0, 1e4, 1e4):
            watch.observe(value, stacklevel=1)
    assert watch.warned and watch.best == 1.0


class Exploding(nn.Module):
    def forward(self, pred, target):
        raise RuntimeError("loss failed")


@pytest.mark.parametrize("engine", ENGINES)
def test_an_error_inside_the_step_leaves_batchnorm_untouched(engine):
    opt, x, y = _bn_optimizer(engine)
    before = snapshot(opt)
    opt.loss = Exploding()
    with pytest.raises(RuntimeError, match="loss failed"):
        opt.step(x, y)
    with pytest.raises(RuntimeError, match="loss failed"):
        opt.meta_gradient(x, y)
    assert torch.equal(before["theta"], flat(opt.model.parameters()))
    assert all(
        torch.equal(a, b) for a, b in zip(before["buffers"], opt.model.buffers(), strict=True)
    )
    assert before["steps"] == opt.steps


# -- torch.optim's optimizer API on the wrapper ------------------------------------------
def test_torch_optimizer_hooks_run_on_the_wrapper():
    opt, x, y = _bn_optimizer()
    calls = []
    handles = [
        opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o, len(args)))),
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o.steps))),
        opt.register_state_dict_pre_hook(lambda o: calls.append("sd-pre")),
        opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1}),
        opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load-pre")),
        opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post")),
    ]
    steps = opt.steps
    opt.step(x, y)
    assert calls == [("pre", opt, 3), ("post", steps + 1)]  # args: (opt, x, y); post sees the step
    saved = opt.state_dict()
    assert saved["extra"] == 1 and calls[-1] == "sd-pre"
    opt.load_state_dict(saved)
    assert calls[-2:] == ["load-pre", "load-post"]
    for handle in handles:
        handle.remove()
    opt.step(x, y)
    assert len(calls) == 5  # removed hooks stay quiet


def test_a_step_pre_hook_can_replace_the_batch():
    opt, x, y = _bn_optimizer()
    opt.register_step_pre_hook(lambda o, args, kwargs: ((args[0], args[1], y), kwargs))
    assert not opt.step(x, "not the targets").skipped  # the hook's y reached the step


def test_the_wrapper_deep_copies_and_adds_param_groups():
    model = mlp()
    head = nn.Linear(3, 3)
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = paper_optimizer(model, base, adaloss.Classification(3))
    twin = copy.deepcopy(opt)
    assert twin.steps == opt.steps and twin.model is not opt.model
    assert twin._optimizer_step_pre_hooks is not opt._optimizer_step_pre_hooks
    with pytest.raises(ValueError, match="not parameters of the model"):
        opt.add_param_group({"params": head.parameters()})
    assert len(opt.param_groups) == 1  # the refused group was taken out again
    model.add_module("head", head)
    opt.add_param_group({"params": head.parameters(), "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("opt_name", ["momentum", "adam"])
def test_meta_every_mixes_torch_and_torchopt_steps_on_torchs_trajectory(opt_name, engine, float64):
    """Plain steps run torch's kernels, meta steps TorchOpt's update on the state torch wrote."""
    plain, wrapped = make_model("mlp"), make_model("mlp")
    plain_opt = OPTIMIZERS[opt_name](plain.parameters())
    opt = paper_optimizer(
        wrapped, OPTIMIZERS[opt_name](wrapped.parameters()), adaloss.Classification(3),
        loss=CrossEntropyOnProbabilities(), hypergrad=engine, meta_every=3,
    )  # fmt: skip
    flags = []
    for x, y in batches((6,), 10):
        plain_opt.zero_grad()
        nn.functional.cross_entropy(plain(x), y).backward()
        plain_opt.step()
        flags.append(opt.step(x, y).task_loss is not None)  # the meta path measures L_T
    assert flags == [t % 3 == 0 for t in range(10)]
    tol = 1e-5 if opt_name == "adam" else 1e-10
    for a, b in zip(plain.parameters(), wrapped.parameters(), strict=True):
        assert torch.allclose(b, a, rtol=tol, atol=tol * float(a.detach().abs().max()))
    for p_plain, p_wrapped in zip(plain.parameters(), wrapped.parameters(), strict=True):
        for key, value in plain_opt.state[p_plain].items():
            assert torch.allclose(opt.state[p_wrapped][key].double(), value.double(), rtol=tol)
