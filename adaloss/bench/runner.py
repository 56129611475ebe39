"""``adaloss run``: train the paper's methods on a task over seeds, one JSON per run.

For a seed, every method starts from the same θ_0 and sees the same training
batches in the same order (the offline phase draws from its own stream), so
differences between methods come from the methods. A finished
``DIR/<task>/<model>/<method>/seed<N>.json`` is never recomputed: runs resume.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

PAPER_MODELS = {
    "diabetes": ["adaloss_mlp"],
    "crime": ["adaloss_mlp"],
    "california": ["adaloss_mlp"],
    "digits": ["adaloss_logistic", "adaloss_mlp"],
    "mnist": ["adaloss_logistic", "adaloss_mlp", "adaloss_lenet5"],
    "cifar10": [
        "adaloss_vgg16_cifar",
        "adaloss_allcnn_c",
        "adaloss_resnet18_cifar",
        "adaloss_squeezenet_cifar",
    ],
    "cifar100": ["adaloss_wrn28_10"],
    "svhn": ["adaloss_wrn16_8"],
}
PAPER_STEPS = {"mnist": 25_000, "cifar10": 100_000, "cifar100": 150_000, "svhn": 150_000}
REGRESSION_TASKS = ("diabetes", "crime", "california")
AUGMENTED_TASKS = ("cifar10", "cifar100", "svhn")
METHODS = ("baseline", "ml3", "metalr", "adalfl")
LABELS = {
    "baseline": "Baseline",
    "ml3": "ML3 (Offline)",
    "metalr": "Meta-LR (Online)",
    "adalfl": "AdaLFL (Online)",
}
LOSSES = ("network", "anchored", "ml3", "taylor2", "taylor3")
DEFAULT_META_LR = 1e-5  # the paper's online η (Appendix C)
DEFAULT_INIT_STEPS = 2500  # the paper's S_init (Appendix C)
RECIPES = ("paper", "default")  # adaloss.recipes.RECIPES; ML3 and Meta-LR always use "paper"


@dataclass
class RunConfig:
    """Everything that determines one run (written into its result file)."""

    task: str
    model: str
    method: str
    seed: int
    steps: int
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    loss: str = "network"
    meta_objective: str = "validation"
    meta_lr: float | None = None  # None: the recipe's (paper: 1e-5)
    recipe: str = "paper"
    guard: float | None = None  # None: the recipe's; 0: off
    init_steps: int = DEFAULT_INIT_STEPS
    init_meta_lr: float = 1e-3
    inner_steps: int = 1
    meta_every: int = 1
    hypergrad: str = "forward"
    eval_every: int = 0  # 0: steps // 50
    snapshot_every: int = 0  # 0: steps // 10
    data_dir: str | None = None
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The method's name in results: the method plus the variant options it uses."""
        key = self.method
        recipe = self.recipe_settings
        if self.method == "adalfl" and self.recipe != "paper":
            key += f"_{self.recipe}"
        if self.method in ("ml3", "adalfl") and self.loss != "network":
            key += f"_{self.loss}"
        if self.method in ("metalr", "adalfl") and self.meta_objective != "validation":
            key += f"_{self.meta_objective}"
        default_eta = recipe.meta_lr if self.method == "adalfl" else DEFAULT_META_LR
        if self.method in ("metalr", "adalfl") and self.meta_lr not in (None, default_eta):
            key += f"_eta{self.meta_lr:g}"
        if self.method == "adalfl" and self.guard is not None and self.guard != recipe.guard:
            key += f"_guard{self.guard:g}" if self.guard else "_noguard"
        offline = self.method != "baseline" and (
            self.method != "adalfl" or recipe.start == "offline"
        )
        if offline and self.inner_steps != 1:
            key += f"_inner{self.inner_steps}"
        if offline and self.init_steps != DEFAULT_INIT_STEPS:
            key += f"_init{self.init_steps}"
        return key

    @property
    def recipe_settings(self):
        """The named recipe of ``adaloss.recipes`` (ML3 and Meta-LR: always the paper's)."""
        from adaloss.recipes import get_recipe

        return get_recipe(self.recipe if self.method == "adalfl" else "paper")

    @property
    def label(self) -> str:
        label = LABELS[self.method]
        variants = self.key.split("_")[1:]
        return f"{label} [{', '.join(variants)}]" if variants else label


def result_path(out: Path, config: RunConfig) -> Path:
    return out / config.task / config.model / config.key / f"seed{config.seed}.json"


def _versions() -> dict[str, str]:
    import numpy
    import timm
    import torchopt

    import adaloss

    return {
        "adaloss": adaloss.__version__,
        "torch": torch.__version__,
        "torchopt": torchopt.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _make_loss(name: str) -> nn.Module:
    import adaloss

    return {
        "network": adaloss.LossNetwork,
        "anchored": lambda: adaloss.LossNetwork(anchored=True),
        "ml3": adaloss.ML3Network,
        "taylor2": lambda: adaloss.TaylorLoss(2),
        "taylor3": lambda: adaloss.TaylorLoss(3),
    }[name]()


def _make_model(config: RunConfig, data) -> nn.Module:
    import timm

    import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_ models)

    kwargs = {"num_classes": data.num_outputs}
    if config.model in ("adaloss_mlp", "adaloss_logistic"):
        kwargs["in_features"] = math.prod(data.input_shape)
    elif len(data.input_shape) == 3:
        kwargs["in_chans"] = data.input_shape[0]
    return timm.create_model(config.model, **kwargs)


@torch.no_grad()
def _error(model: nn.Module, task, ds, device, limit: int | None = None) -> float:
    from adaloss.bench.batching import eval_batches

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in eval_batches(ds, batch_size=1024, device=device):
        if limit is not None and count >= limit:
            break
        total += float(task.error(model(x), y)) * len(x)
        count += len(x)
    model.train(was_training)
    return total / max(count, 1)


def _mean_predictor_error(data) -> float:
    from adaloss.bench.batching import full_batch

    _, y_train = full_batch(data.train)
    _, y_sel = full_batch(data.selection)
    return float(((y_sel - y_train.mean(0)) ** 2).mean())


@dataclass
class PreparedRun:
    """Everything a run trains with, after the offline phase; see ``prepare_run``."""

    config: RunConfig
    data: object
    task: object
    model: nn.Module
    base: torch.optim.Optimizer
    opt: torch.optim.Optimizer | None  # None for the baseline
    timeline: object | None  # LossTimeline of a learned loss, else None
    train: object  # training batch stream
    val: object  # validation (meta-objective) batch stream
    init_time: float  # seconds spent building the meta optimizer and in the offline phase

    def step(self) -> bool:
        """One training step on the next batch; False if a non-finite value stopped it."""
        x, y = next(self.train)
        if self.opt is None:
            self.base.zero_grad(set_to_none=True)
            loss_value = self.task.loss(self.model(x), y)
            if not torch.isfinite(loss_value):
                return False
            loss_value.backward()
            self.base.step()
            return True
        training_only = self.config.meta_objective == "training"
        xv, yv = (None, None) if training_only else next(self.val)
        return not self.opt.step(x, y, xv, yv).skipped


def prepare_run(config: RunConfig, make_loss: Callable[[], nn.Module] | None = None) -> PreparedRun:
    """Build θ_0, ϕ_0 and the batch streams for ``config`` and run the offline phase.

    Seeds depend on ``config.seed`` only, so every method of a seed starts alike.
    ``make_loss`` builds a learned loss other than the one ``config.loss`` names (the probes
    in scripts/ use it); it is called after ϕ_0's seed is set, as ``config.loss`` is.
    """
    import adaloss
    from adaloss.bench.batching import batches
    from adaloss.bench.datasets import load_dataset
    from adaloss.timeline import LossTimeline

    device = torch.device(config.device)
    data = load_dataset(config.task, config.data_dir, seed=config.seed)
    task = (
        adaloss.Regression(data.num_outputs)
        if data.kind == "regression"
        else adaloss.Classification(data.num_outputs)
    )
    torch.manual_seed(config.seed)  # θ_0 depends on the seed only, not on the method
    model = _make_model(config, data).to(device).train()
    base = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    train = batches(data.train, config.batch_size, seed=config.seed, device=device)
    val_batch = min(config.batch_size, len(data.val))
    val = batches(data.val, val_batch, seed=config.seed + 1, device=device)

    opt, timeline = None, None
    started = time.perf_counter()
    if config.method != "baseline":
        torch.manual_seed(10_000 + config.seed)  # ϕ_0: the same for every learned-loss method
        meta_lr = DEFAULT_META_LR if config.meta_lr is None else config.meta_lr
        if config.method == "metalr":
            opt = adaloss.MetaLROptimizer(model, base, task, meta_lr=meta_lr,
                                          meta_every=config.meta_every)  # fmt: skip
        else:
            loss = (make_loss() if make_loss else _make_loss(config.loss)).to(device)
            recipe = config.recipe if config.method == "adalfl" else "paper"
            guard = None if config.guard is None else (config.guard or False)
            opt = adaloss.MetaLossOptimizer(
                model, base, task, loss=loss, meta_lr=config.meta_lr, hypergrad=config.hypergrad,
                meta_every=config.meta_every, online=config.method == "adalfl", recipe=recipe,
                guard=guard if config.method == "adalfl" else None,
            )  # fmt: skip
            timeline = LossTimeline(loss, task)
        init_train = batches(
            data.train, config.batch_size, seed=20_000 + config.seed, device=device
        )
        init_val = batches(data.val, val_batch, seed=30_000 + config.seed, device=device)
        if config.method == "adalfl" and config.recipe_settings.start != "offline":
            opt.initialize(init_train)  # the recipe's own start (warm start)
        else:
            opt.initialize(
                init_train,
                None if config.meta_objective == "training" else init_val,
                steps=config.init_steps,
                meta_lr=config.init_meta_lr,
                inner_steps=config.inner_steps,
            )
    init_time = time.perf_counter() - started
    return PreparedRun(config, data, task, model, base, opt, timeline, train, val, init_time)


def run_one(config: RunConfig, progress: bool = True) -> dict:
    """Train one (task, model, method, seed) and return its result record."""
    device = torch.device(config.device)
    run = prepare_run(config)
    data, task, model, opt = run.data, run.task, run.model, run.opt
    timeline, init_time = run.timeline, run.init_time
    regression = data.kind == "regression"
    started = time.perf_counter() - init_time  # wall time: offline phase + training

    eval_every = config.eval_every or max(1, config.steps // 50)
    snapshot_every = config.snapshot_every or max(1, config.steps // 10)
    curve: dict[str, list] = {
        "step": [],
        "train_error": [],
        "val_error": [],
        "selection_error": [],
        "test_error": [],
    }
    extra_curves: dict[str, list] = {"lr": []} if config.method == "metalr" else {}
    diverged = False

    def record(step: int) -> None:
        curve["step"].append(step)
        curve["train_error"].append(_error(model, task, data.train, device, limit=10_000))
        curve["val_error"].append(_error(model, task, data.val, device))
        curve["selection_error"].append(_error(model, task, data.selection, device))
        curve["test_error"].append(_error(model, task, data.test, device))
        if "lr" in extra_curves:
            extra_curves["lr"].append(float(opt.lr.detach()))

    record(0)
    if timeline is not None:
        timeline.snapshot(0)
    bar = tqdm(range(1, config.steps + 1), disable=not progress, leave=False,
               desc=f"{config.task}/{config.model}/{config.key}/seed{config.seed}")  # fmt: skip
    for step in bar:
        diverged = not run.step()
        if diverged:
            break
        if step % eval_every == 0 or step == config.steps:
            record(step)
            if not math.isfinite(curve["test_error"][-1]):
                diverged = True
                break
        if timeline is not None and (step % snapshot_every == 0 or step == config.steps):
            timeline.snapshot(step)
    wall = time.perf_counter() - started

    final_test = curve["test_error"][-1] if not diverged else float("nan")
    return {
        "task": config.task,
        "model": config.model,
        "method": config.key,
        "label": config.label,
        "seed": config.seed,
        "metric": "mse" if regression else "error_rate",
        "num_classes": None if regression else data.num_outputs,
        # selection MSE of predicting the training targets' mean: a regression run that ends
        # no better than this constant has learned nothing (report.is_collapsed)
        "mean_predictor_error": _mean_predictor_error(data) if regression else None,
        "config": asdict(config),
        "versions": _versions(),
        "wall_time_s": wall,
        "init_time_s": init_time,
        "final": {
            "test_error": final_test,
            "val_error": curve["val_error"][-1],
            "selection_error": curve["selection_error"][-1],
            "train_error": curve["train_error"][-1],
            "diverged": diverged,
            "skipped_steps": 0 if opt is None else opt.skipped_steps,
            "guarded_steps": getattr(opt, "guarded_steps", 0),
        },
        "curve": {**curve, **extra_curves},
        "loss_grid": None if timeline is None else timeline.to_dict(),
    }


def _write_json(path: Path, record: dict) -> None:
    """Atomic write: a crash never leaves a half-written result that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, allow_nan=True))
    os.replace(tmp, path)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="diabetes, crime, california, digits, "
                        "mnist, cifar10, cifar100, svhn")  # fmt: skip
    parser.add_argument(
        "--model",
        default=None,
        help="comma-separated timm names (default: the paper's for the task)",
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--seeds", type=int, default=5, help="run seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="base steps (default: paper's)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="base SGD lr (default 0.001 regression, 0.01 classification)",
    )
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--loss", choices=LOSSES, default="network")
    parser.add_argument("--meta-objective", choices=("validation", "training"),
                        default="validation")  # fmt: skip
    parser.add_argument("--meta-lr", type=float, default=None,
                        help="online η (default: the recipe's; Meta-LR: 1e-5)")  # fmt: skip
    parser.add_argument("--recipe", choices=RECIPES, default="default",
                        help="AdaLFL recipe; ML3, Meta-LR: the paper's")  # fmt: skip
    parser.add_argument("--guard", type=float, default=None,
                        help="AdaLFL guard bound κ (default: the recipe's; 0: off)")  # fmt: skip
    parser.add_argument(
        "--init-steps", type=int, default=DEFAULT_INIT_STEPS, help="offline steps (Alg. 1)"
    )
    parser.add_argument("--init-meta-lr", type=float, default=1e-3, help="offline η")
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--meta-every", type=int, default=1)
    parser.add_argument("--hypergrad", choices=("forward", "unroll"), default="forward")
    parser.add_argument("--eval-every", type=int, default=0, help="0: steps/50")
    parser.add_argument("--snapshot-every", type=int, default=0, help="0: steps/10")
    parser.add_argument(
        "--data-dir", default=None, help="data folder (default: $ADALOSS_DATA or ~/.cache/adaloss)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", default="runs", help="result folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    regression = args.task in REGRESSION_TASKS
    augmented = args.task in AUGMENTED_TASKS
    models = args.model.split(",") if args.model else PAPER_MODELS.get(args.task)
    if not models:
        raise SystemExit(f"no default model for task {args.task!r}: pass --model")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    defaults = {
        "steps": args.steps or PAPER_STEPS.get(args.task, 10_000),
        "lr": args.lr if args.lr is not None else (0.001 if regression else 0.01),
        "momentum": args.momentum if args.momentum is not None else (0.9 if augmented else 0.0),
        "weight_decay": args.weight_decay
        if args.weight_decay is not None
        else (5e-4 if augmented else 0.0),
    }
    shared = {
        name: getattr(args, name)
        for name in (
            "batch_size", "loss", "meta_objective", "meta_lr", "recipe", "guard", "init_steps",
            "init_meta_lr",
            "inner_steps", "meta_every", "hypergrad", "eval_every", "snapshot_every",
            "data_dir", "device",
        )
    }  # fmt: skip
    configs = [
        RunConfig(
            task=args.task,
            model=model,
            method=method,
            seed=seed,
            nesterov=augmented,
            **shared,
            **defaults,
        )  # fmt: skip
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for model in models
        for method in methods
    ]
    return configs


def run_from_args(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    for config in configs_from_args(args):
        path = result_path(out, config)
        if path.exists():
            print(f"done already: {path}")
            continue
        record = run_one(config, progress=not args.quiet)
        _write_json(path, record)
        final = record["final"]
        status = (
            "DIVERGED"
            if final["diverged"]
            else f"test {record['metric']} {final['test_error']:.4f}"
        )
        print(f"{path}: {status} ({record['wall_time_s']:.0f} s)", flush=True)
    return 0
