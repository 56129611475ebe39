"""MetaLossOptimizer training timm models, with timm's optimizer factory and LR schedulers.

Covers: one online step with both hypergradient engines on the paper models registered by
``adaloss.integrations.timm``; equal meta-gradients from the two engines on timm models with
BatchNorm and dropout; ``timm.optim.create_optimizer_v2`` names that give torch's own
SGD/Adam/AdamW; ``timm.scheduler.CosineLRScheduler`` setting the *effective* step size;
and the README's timm snippet running as written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import timm
import timm.optim
import timm.scheduler
import torch
from conftest import CrossEntropyOnProbabilities
from torch import nn

import adaloss
import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_* models)

ENGINES = ["forward", "unroll"]
README = Path(__file__).resolve().parents[1] / "README.md"


def timm_section() -> str:
    """README's "## timm" section, up to the next heading of the same level."""
    match = re.search(r"^## timm\n(.*?)(?=^## )", README.read_text(), flags=re.S | re.M)
    assert match, "README.md has no '## timm' section"
    return match.group(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread, as in test_timm_models: predictable on small shared CI machines,
    where two OpenMP threads per process competing with other jobs can be 10-50x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def data(shape, batch: int, classes: int = 10, seed: int = 0, dtype=torch.float32):
    """A training and a validation batch of random images."""
    g = torch.Generator().manual_seed(seed)
    x, xv = (torch.randn(batch, *shape, generator=g, dtype=dtype) for _ in range(2))
    y, yv = (torch.randint(0, classes, (batch,), generator=g) for _ in range(2))
    return x, y, xv, yv


# -- one step on every paper model, both engines ---------------------------------------------
# The WRN-28-10 / WRN-16-8 take no step here (10-20 s per step on 2 cores); test_timm_models
# builds them. ResNet-18 is built with zero_init_last=False: timm's default zero-initialises
# each block's last BatchNorm scale, which gives the block's convolutions an exactly zero first
# gradient, so "the parameters moved" would only hold for a third of its weights.
STEP_MODELS = {
    "adaloss_mlp": {},
    "adaloss_logistic": {},
    "adaloss_lenet5": {},
    "adaloss_allcnn_c": {},  # BatchNorm + dropout 0.5
    "adaloss_squeezenet_cifar": {},  # dropout, ceil-mode max-pool, concat, in-place ReLU
    "adaloss_vgg16_cifar": {},  # 13 BatchNorms, a 2x2 map before the last pool
    "adaloss_resnet18_cifar": {"zero_init_last": False},
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(STEP_MODELS))
def test_one_meta_step_on_each_paper_model(name, engine, recwarn):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, **STEP_MODELS[name])
    x, y, xv, yv = data(model.pretrained_cfg["input_size"], batch=2)
    base = timm.optim.create_optimizer_v2(model, "momentum", lr=0.01, weight_decay=5e-4)
    opt = adaloss.MetaLossOptimizer(
        model, base, adaloss.Classification(10), hypergrad=engine, meta_lr=1e-3
    )
    theta = [p.detach().clone() for p in model.parameters()]
    phi = flat(opt.loss.parameters()).clone()

    result = opt.step(x, y, xv, yv)

    assert not result.skipped and result.meta_updated
    assert torch.isfinite(result.learned_loss) and torch.isfinite(result.task_loss)
    assert opt.hypergrad == engine  # no fallback: every op here has a forward-mode rule
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    params = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in params)
    moved = sum(p.numel() for p, p0 in zip(params, theta, strict=True) if not torch.equal(p, p0))
    # Nearly every weight moves; a few BatchNorm scales may get an update below float32's
    # resolution at 1.0 (AllCNN-C's features.21.weight does with this seed).
    assert moved >= 0.99 * sum(p.numel() for p in params)
    head = model.get_classifier()
    assert all(not torch.equal(p, theta[i]) for i, p in _indices(model, head.parameters()))
    assert not torch.equal(flat(opt.loss.parameters()), phi)  # the loss network learned
    assert torch.isfinite(flat(opt.loss.parameters())).all()


def _indices(model: nn.Module, subset):
    ids = {id(p) for p in subset}
    return [(i, p) for i, p in enumerate(model.parameters()) if id(p) in ids]


# -- the two engines agree on timm models -------------------------------------------------
# float64; train mode: BatchNorm normalises with the batch's statistics (B = 4) and dropout is
# active, with the same masks for both engines because the RNG is seeded identically before
# each call. Inputs are smaller than the models' nominal 32x32 (all are convolutional up to a
# global pool; ResNet-18's layer4 then sees 1x1 maps) to keep the float64 runs short.
EQUAL_MODELS = {
    "adaloss_lenet5": ({}, (1, 28, 28), "sgd"),  # tanh, average pools; timm "sgd" = Nesterov
    "adaloss_allcnn_c": ({}, (3, 16, 16), "adamw"),  # BatchNorm + dropout 0.5
    "adaloss_squeezenet_cifar": ({}, (3, 16, 16), "adam"),  # dropout, ceil-mode max-pools
    "adaloss_resnet18_cifar": ({"zero_init_last": False}, (3, 8, 8), "momentum"),
}


@pytest.mark.parametrize("name", list(EQUAL_MODELS))
def test_engines_give_the_same_meta_gradient(name):
    kwargs, shape, opt_name = EQUAL_MODELS[name]
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, **kwargs).double()
    # weight_decay > 0: timm puts biases and norm scales in a second, no-decay param group.
    base = timm.optim.create_optimizer_v2(model, opt_name, lr=1e-2, weight_decay=1e-2)
    assert len(base.param_groups) == 2
    loss = adaloss.LossNetwork().double()
    task = adaloss.Classification(10)
    engines = {  # learn_lr=False: each wrapper would hold a step length of its own
        e: adaloss.MetaLossOptimizer(
            model, base, task, loss=loss, hypergrad=e, meta_lr=1e-3, learn_lr=False
        )
        for e in ENGINES
    }
    x, y, xv, yv = data(shape, batch=4, dtype=torch.float64, seed=1)
    torch.manual_seed(5)
    engines["forward"].step(x, y, xv, yv)  # optimizer state (momentum / moments) now non-empty
    x, y, xv, yv = data(shape, batch=4, dtype=torch.float64, seed=2)
    grads = {}
    for engine, opt in engines.items():
        torch.manual_seed(11)  # the same dropout masks for both
        grads[engine] = flat(opt.meta_gradient(x, y, xv, yv))
    assert grads["unroll"].norm() > 0
    assert relative(grads["forward"], grads["unroll"]) <= 1e-6


# -- timm's optimizer factory ---------------------------------------------------------------
TORCH_CLASSES = {
    "sgd": torch.optim.SGD,  # timm's "sgd" is SGD with momentum 0.9 and nesterov=True
    "nesterov": torch.optim.SGD,
    "momentum": torch.optim.SGD,  # momentum 0.9, nesterov=False
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adamax": torch.optim.Adamax,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,  # timm's "rmsprop" is torch's with alpha 0.9
}


@pytest.mark.parametrize("opt_name", list(TORCH_CLASSES))
def test_timm_factory_names_that_give_torch_optimizers(opt_name):
    model = timm.create_model("adaloss_logistic", num_classes=3, img_size=8)
    base = timm.optim.create_optimizer_v2(model, opt_name, lr=0.1, weight_decay=1e-4)
    assert type(base) is TORCH_CLASSES[opt_name]
    opt = adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3))
    assert opt.param_groups is base.param_groups
    x, y, xv, yv = data((1, 8, 8), batch=4, classes=3)
    assert not opt.step(x, y, xv, yv).skipped


@pytest.mark.parametrize(
    "opt_name", ["adamwlegacy", "nadamlegacy", "radamlegacy", "rmsproptf", "lamb", "sgdp", "lion"]
)
def test_timm_factory_names_with_other_classes_are_rejected(opt_name):
    # The "*legacy" names and "rmsproptf" are timm's own classes; the others are different
    # algorithms.
    model = timm.create_model("adaloss_logistic", num_classes=3, img_size=8)
    base = timm.optim.create_optimizer_v2(model, opt_name, lr=0.1)
    with pytest.raises(TypeError, match="unsupported base optimizer"):
        adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3))


# -- timm's LR scheduler sets the effective step size -----------------------------------------
BASE_LR, WARMUP_LR, MIN_LR, WARMUP, T_INITIAL, STEPS = 0.5, 0.05, 0.02, 3, 8, 10


def expected_lr(t: int) -> float:
    """CosineLRScheduler's value at t, written out: linear warmup, then cosine to MIN_LR.

    With warmup_prefix=False (timm's default) the cosine runs on t itself, not on t - WARMUP,
    and after T_INITIAL (cycle_limit=1) the rate stays at MIN_LR.
    """
    if t < WARMUP:
        return WARMUP_LR + t * (BASE_LR - WARMUP_LR) / WARMUP
    if t >= T_INITIAL:
        return MIN_LR
    return MIN_LR + 0.5 * (BASE_LR - MIN_LR) * (1 + math.cos(math.pi * t / T_INITIAL))


def cosine(optimizer, per: str) -> timm.scheduler.CosineLRScheduler:
    return timm.scheduler.CosineLRScheduler(
        optimizer,
        t_initial=T_INITIAL,
        lr_min=MIN_LR,
        warmup_t=WARMUP,
        warmup_lr_init=WARMUP_LR,
        t_in_epochs=per == "epoch",
    )


def advance(scheduler, per: str, t: int) -> None:
    """timm's calling convention: step(epoch) after an epoch, step_update(updates) per update."""
    if per == "epoch":
        scheduler.step(t)
    else:
        scheduler.step_update(t)


@pytest.mark.parametrize("scheduled", ["base", "wrapper"])
@pytest.mark.parametrize("per", ["epoch", "update"])
@pytest.mark.parametrize("meta_every", [1, 2], ids=["meta_step", "meta_every_2"])
@pytest.mark.parametrize("engine", ENGINES)
def test_scheduled_lr_is_the_effective_step_size(engine, meta_every, per, scheduled, float64):
    """Plain SGD on a parameter-free learned loss: θ_{t+1} − θ_t = −lr_t · ∇M(θ_t) exactly.

    Covers both update paths (the engine's differentiable update on meta steps, torch's own
    ``base.step()`` in between with ``meta_every=2``) and the scheduler built on either the
    base optimizer or the MetaLossOptimizer itself (it exposes the base's param_groups).
    """
    torch.manual_seed(0)
    model = timm.create_model("adaloss_logistic", num_classes=3, img_size=8)
    base = timm.optim.create_optimizer_v2(model, "momentum", lr=BASE_LR, momentum=0.0)
    loss = CrossEntropyOnProbabilities()
    task = adaloss.Classification(3)
    opt = adaloss.MetaLossOptimizer(
        model, base, task, loss=loss, hypergrad=engine, meta_every=meta_every, learn_lr=False
    )  # learn_lr=False: the step is the scheduled lr's, not r times it
    scheduler = cosine(base if scheduled == "base" else opt, per)
    effective = []
    for t in range(STEPS):
        x, y, xv, yv = data((1, 8, 8), batch=6, classes=3, seed=t, dtype=torch.float64)
        theta = flat(model.parameters())
        grad = flat(
            torch.autograd.grad(
                loss(*task.learned_loss_inputs(model(x), y)), list(model.parameters())
            )
        )
        assert base.param_groups[0]["lr"] == pytest.approx(expected_lr(t), rel=1e-12)
        result = opt.step(x, y, xv, yv)
        assert not result.skipped
        delta = flat(model.parameters()) - theta
        lr = float(-(delta @ grad) / (grad @ grad))
        assert relative(delta, -lr * grad) < 1e-12  # a pure gradient step ...
        assert lr == pytest.approx(expected_lr(t), rel=1e-10)  # ... of the scheduled size
        effective.append(lr)
        advance(scheduler, per, t + 1)
    # The schedule really changed the steps: warmup rises ten-fold, the cosine decays to MIN_LR.
    assert effective[0] == pytest.approx(WARMUP_LR) and max(effective) > 5 * effective[0]
    assert effective[-1] == pytest.approx(MIN_LR)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_scheduled_training_matches_a_plain_timm_loop(opt_name, float64):
    """A timm training loop (factory optimizer, two param groups, per-update cosine schedule
    with warmup) and the same loop through MetaLossOptimizer with a parameter-free
    cross-entropy loss and the scheduler on the wrapper follow the same trajectory."""
    models, optimizers = [], []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(timm.create_model("adaloss_lenet5", num_classes=3, img_size=16))
        base = timm.optim.create_optimizer_v2(models[-1], opt_name, lr=0.05, weight_decay=0.05)
        optimizers.append(base)
    plain, wrapped = optimizers
    opt = adaloss.MetaLossOptimizer(  # learn_lr=False: plain training's step length
        models[1], wrapped, adaloss.Classification(3), loss=CrossEntropyOnProbabilities(),
        learn_lr=False,
    )  # fmt: skip
    schedulers = [cosine(plain, "update"), cosine(opt, "update")]
    for t in range(STEPS):
        x, y, xv, yv = data((1, 16, 16), batch=6, classes=3, seed=t, dtype=torch.float64)
        plain.zero_grad()
        nn.functional.cross_entropy(models[0](x), y).backward()
        plain.step()
        assert not opt.step(x, y, xv, yv).skipped
        for s in schedulers:
            s.step_update(t + 1)
        assert plain.param_groups[0]["lr"] == wrapped.param_groups[0]["lr"]
    assert relative(flat(models[1].parameters()), flat(models[0].parameters())) < 1e-9
    assert wrapped.param_groups[0]["lr"] == pytest.approx(expected_lr(STEPS))


def test_timm_scheduler_factory_accepts_the_wrapper():
    model = timm.create_model("adaloss_logistic", num_classes=3, img_size=8)
    base = timm.optim.create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)
    opt = adaloss.MetaLossOptimizer(model, base, adaloss.Classification(3))
    scheduler, epochs = timm.scheduler.create_scheduler_v2(
        opt, "cosine", num_epochs=10, warmup_epochs=2, warmup_lr=1e-5
    )
    assert isinstance(scheduler, timm.scheduler.CosineLRScheduler) and epochs == 10
    assert all(g["lr"] == 1e-5 and g["initial_lr"] == 1e-3 for g in base.param_groups)
    scheduler.step(2)
    assert all(
        g["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.2)))
        for g in base.param_groups
    )


# -- the README snippet runs ----------------------------------------------------------------
def snippet_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", timm_section(), flags=re.S)
    assert blocks, "no ```python block in README's timm section"
    return blocks[-1]  # the training snippet is the last block


# What the test shrinks, each of which must appear in the snippet exactly once.
SHRINK = {"epochs = 200": "epochs = 2"}


def test_readme_snippet_runs():
    code = snippet_code()
    for old, new in SHRINK.items():
        assert code.count(old) == 1, f"snippet no longer contains {old!r}"
        code = code.replace(old, new)
    g = torch.Generator().manual_seed(0)
    train = [(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g))]
    val = [(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g))]
    namespace = {"train_loader": train, "val_loader": val}
    exec(compile(code, str(README), "exec"), namespace)
    model, opt, base = namespace["model"], namespace["opt"], namespace["base"]
    assert isinstance(opt, adaloss.MetaLossOptimizer) and type(base) is torch.optim.SGD
    assert opt.steps == 2 and opt.skipped_steps == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the scheduler ran: after epoch 2 of 2 (still in warmup) the rate is 1e-3 + 2/5 (0.1 - 1e-3)
    assert base.param_groups[0]["lr"] == pytest.approx(1e-3 + 2 / 5 * (0.1 - 1e-3))


def test_readme_cifar_stem_example_runs():
    lines = re.findall(r"`(model = cifar_stem\(.*?\))`", timm_section())
    assert len(lines) == 1
    namespace: dict = {}
    exec("import timm\nfrom adaloss.integrations.timm import cifar_stem\n" + lines[0], namespace)
    with torch.no_grad():
        assert namespace["model"].eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
