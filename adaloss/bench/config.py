"""What determines one benchmark run, the name its result is filed under, and the options
of ``adaloss run`` that choose the runs.

``RunConfig`` holds every setting of a run and is written into its result file;
``RunConfig.key`` names the method together with the variant options that differ from
the method's defaults, so that variants of one method get their own column and folder.
The paper's per-task settings (models, steps, optimizer; Appendix C) are the options'
defaults.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import adaloss
from adaloss.bench import results
from adaloss.bench.names import METHODS, default_label
from adaloss.recipes import (
    AFTER_STOP,
    RECIPES,
    Recipe,
    for_task,
    get_recipe,
    passed_settings,
    with_arguments,
)
from adaloss.recipes import LOSSES as RECIPE_LOSSES

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
#: The learned losses a run can use, by the name ``--loss`` takes.
LOSSES = {
    **RECIPE_LOSSES,  # "network", "monotone": what a recipe can build by itself
    "network8": lambda: adaloss.LossNetwork(hidden=(8,)),  # one hidden layer of 8: 33 parameters
    "anchored": lambda: adaloss.LossNetwork(anchored=True),
    "ml3": adaloss.ML3Network,
    "taylor2": lambda: adaloss.TaylorLoss(2),
    "taylor3": lambda: adaloss.TaylorLoss(3),
}
_PAPER = get_recipe("paper")
DEFAULT_META_LR = _PAPER.meta_lr  # the paper's online η (Appendix C); Meta-LR always uses it
DEFAULT_INIT_STEPS = _PAPER.offline_steps  # the paper's S_init (Appendix C)
DEFAULT_INIT_META_LR = _PAPER.offline_meta_lr  # the paper's offline η


PAPER_BATCH_SIZE = 128


def paper_lr(task: str) -> float:
    """The paper's base SGD learning rate for ``task`` (Appendix C)."""
    return 0.001 if task in REGRESSION_TASKS else 0.01


def paper_training(task: str) -> dict[str, float]:
    """The paper's base-optimizer and batch settings for ``task`` (Appendix C): SGD at
    ``paper_lr``, with momentum 0.9 and weight decay 5e-4 on the augmented image tasks."""
    augmented = task in AUGMENTED_TASKS
    return {
        "lr": paper_lr(task),
        "momentum": 0.9 if augmented else 0.0,
        "weight_decay": 5e-4 if augmented else 0.0,
        "batch_size": PAPER_BATCH_SIZE,
    }


@dataclass
class RunConfig:
    """Everything that determines one run (written into its result file)."""

    task: str
    model: str
    method: str
    seed: int
    steps: int
    batch_size: int = PAPER_BATCH_SIZE
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    loss: str = "network"
    meta_objective: str = "validation"
    meta_lr: float | None = None  # None: the recipe's (paper: 1e-5)
    recipe: str = "paper"
    guard: float | None = None  # None: the recipe's; 0: off
    horizon: float | None = None  # None: the recipe's; H: L_T at θ_t + H·U
    meta_anchor: float | None = None  # None: plain Adam updates ϕ; a: adaloss.AnchoredAdam
    patience: int | None = None  # None: the recipe's; 0: adapt to the end; P: adaloss.patience
    after_stop: str | None = None  # None: the recipe's; "task_loss" or "frozen"
    handover: int | str | None = None  # None: the recipe's; 0: no twin; P or "final"
    check_every: int | None = None  # None: the recipe's; 0: none; N: step checks on validation
    check_share: float | None = None  # None: the recipe's; 0: none; s: kept from ϕ for checks
    learn_lr: bool | str | None = None  # None/False: off; True/"longer": the step's length too
    lr_horizon: float | None = None  # None: the recipe's; K: a's horizon (adaloss.steptrace)
    step_length_meta_lr: float | None = None  # None: the recipe's; a's own meta rate
    keep_fit: bool | str | None = None  # None: the recipe's; True or "agree": adaloss.keepfit
    init_steps: int = DEFAULT_INIT_STEPS
    init_meta_lr: float = DEFAULT_INIT_META_LR
    inner_steps: int = 1
    meta_every: int = 1
    hypergrad: str = "forward"
    eval_every: int = 0  # 0: steps // 50
    snapshot_every: int = 0  # 0: steps // 10
    label_noise: float = 0.0  # fraction of training targets replaced by noise
    check_fraction: float = 0.0  # of check_from, held out of training and meta-objective
    check_from: str = "val"  # the split the check split is carved from: "val" or "train"
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
        if self.method == "adalfl" and self.horizon is not None:
            key += f"_horizon{self.horizon:g}"
        if self.method == "adalfl" and self.meta_anchor is not None:
            key += f"_anchor{self.meta_anchor:g}"
        if self.method == "adalfl" and self.patience is not None:
            if (self.patience or None) != recipe.patience:
                key += f"_patience{self.patience}" if self.patience else "_nopatience"
        if self.method == "adalfl" and self.after_stop not in (None, recipe.after_stop):
            key += f"_{self.after_stop}"
        if self.method == "adalfl" and self.handover is not None:
            if (self.handover or None) != recipe.handover:
                key += f"_handover{self.handover}" if self.handover else "_nohandover"
        if self.method == "adalfl" and self.check_every is not None:
            if (self.check_every or None) != recipe.check_every:
                key += f"_every{self.check_every}" if self.check_every else "_noevery"
        if self.method == "adalfl" and self.check_share is not None:
            if (self.check_share or None) != recipe.check_share:
                key += f"_share{self.check_share:g}" if self.check_share else "_noshare"
        if self.method == "adalfl" and self.learn_lr not in (None, recipe.learn_lr):
            key += {True: "_learnlr", "longer": "_learnlonger"}.get(self.learn_lr, "_nolearnlr")
        if self.method == "adalfl" and self.lr_horizon not in (None, recipe.lr_horizon):
            key += f"_lrh{self.lr_horizon:g}"
        if self.method == "adalfl" and self.step_length_meta_lr is not None:
            if self.step_length_meta_lr != recipe.step_length_meta_lr:
                key += f"_slr{self.step_length_meta_lr:g}"
        if self.method == "adalfl" and self.keep_fit not in (None, recipe.keep_fit):
            key += {True: "_keepfit", "agree": "_keepagree"}.get(self.keep_fit, "_nokeepfit")
        offline = self.method != "baseline" and (
            self.method != "adalfl" or recipe.start == "offline"
        )
        if offline and self.inner_steps != 1:
            key += f"_inner{self.inner_steps}"
        if offline and self.init_steps != DEFAULT_INIT_STEPS:
            key += f"_init{self.init_steps}"
        if self.check_fraction:
            key += "_traincheck" if self.check_from == "train" else "_check"
            key += f"{self.check_fraction:g}"
        return key + self._training_variant()

    def _training_variant(self) -> str:
        """The base optimizer's and batch's settings that differ from ``adaloss run``'s
        defaults (the paper's), for every method: a baseline at twice the lr is a column of
        its own, not a second ``baseline`` that would overwrite the first."""
        paper = paper_training(self.task)
        short = {"lr": "lr", "momentum": "momentum", "weight_decay": "wd", "batch_size": "batch"}
        return "".join(
            f"_{short[name]}{getattr(self, name):g}"
            for name in short
            if getattr(self, name) != paper[name]
        )

    @property
    def row(self) -> str:
        """The task's name in results: with corrupted training targets, a row of its own."""
        return self.task if not self.label_noise else f"{self.task}-noise{self.label_noise:g}"

    @property
    def recipe_settings(self) -> Recipe:
        """The named recipe of ``adaloss.recipes`` (ML3 and Meta-LR: always the paper's)."""
        return get_recipe(self.recipe if self.method == "adalfl" else "paper")

    @property
    def label(self) -> str:
        """The method's display name: the paper's label and the key's variant options."""
        return default_label(self.key)

    def result_path(self, out: str | Path) -> Path:
        """Where this run's record lives under the result folder ``out``."""
        return results.result_path(out, self.row, self.model, self.key, self.seed)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``adaloss run``."""
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
    parser.add_argument("--batch-size", type=int, default=PAPER_BATCH_SIZE)
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="base SGD lr (default 0.001 regression, 0.01 classification)",
    )
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--loss", choices=LOSSES, default=None,
                        help="the learned loss (default: the recipe's; ML3: network)")  # fmt: skip
    parser.add_argument("--meta-objective", choices=("validation", "training"),
                        default="validation")  # fmt: skip
    parser.add_argument("--meta-lr", type=float, default=None,
                        help="online η (default: the recipe's; Meta-LR: 1e-5)")  # fmt: skip
    parser.add_argument("--recipe", choices=RECIPES, default="default",
                        help="AdaLFL recipe; ML3, Meta-LR: the paper's")  # fmt: skip
    parser.add_argument("--guard", type=float, default=None,
                        help="AdaLFL guard bound κ (default: the recipe's; 0: off)")  # fmt: skip
    parser.add_argument("--horizon", type=float, default=None,
                        help="AdaLFL: L_T at θ_t + H·U (default: the recipe's)")  # fmt: skip
    parser.add_argument("--meta-anchor", type=float, default=None,
                        help="AdaLFL: ϕ by AnchoredAdam at this pull (default: Adam)")  # fmt: skip
    parser.add_argument("--patience", type=_steps, default=None,
                        help="AdaLFL: stop adapting ϕ after this many steps without a new low "
                        "of the meta-objective (default: the recipe's; 0: never)")  # fmt: skip
    parser.add_argument("--after-stop", choices=AFTER_STOP, default=None,
                        help="AdaLFL: what trains the model once --patience stopped the "
                        "learned loss (default: the recipe's)")  # fmt: skip
    parser.add_argument("--handover", type=_handover, default=None,
                        help="AdaLFL: hand over to a plain-trained twin once it has had the "
                        "lower check error at this many evaluations in a row, or 'final': "
                        "keep the better of the two at the end (needs --check-fraction; "
                        "default: the recipe's; 0: no twin)")  # fmt: skip
    parser.add_argument("--check-every", type=_steps, default=None,
                        help="AdaLFL with --handover P: the optimizer checks by itself every "
                        "this many steps, on the validation batches (no --check-fraction "
                        "needed; default: the recipe's; 0: only on --check-fraction's "
                        "split)")  # fmt: skip
    parser.add_argument("--check-share", type=_fraction, default=None,
                        help="AdaLFL with --check-every: keep this share of the validation "
                        "examples (chosen by content) from the meta-objective, for the checks "
                        "alone (default: the recipe's; 0: none)")  # fmt: skip
    parser.add_argument("--learn-lr", nargs="?", const=True, default=None, type=_learn_lr,
                        help="AdaLFL: learn the base step's length beside the loss "
                        "(adaloss.steplength; 'longer': never below the lr; 'off': not; "
                        "default: the recipe's)")  # fmt: skip
    parser.add_argument("--lr-horizon", type=_horizon_steps, default=None,
                        help="AdaLFL with --learn-lr: the step length's hypergradient over "
                        "about K steps (adaloss.steptrace; inf: the whole run)")  # fmt: skip
    parser.add_argument("--step-length-meta-lr", type=float, default=None,
                        help="AdaLFL with --learn-lr: Adam's rate for the step length's log "
                        "(adaloss.steplength; default: the recipe's, ϕ's η)")  # fmt: skip
    parser.add_argument("--keep-fit", nargs="?", const=True, default=None, type=_keep_fit,
                        help="AdaLFL: project each meta-gradient off the directions that raise "
                        "the task loss on the training batch (adaloss.keepfit; 'agree': drop "
                        "it there; 'off': no; default: the recipe's)")  # fmt: skip
    parser.add_argument(
        "--init-steps", type=int, default=DEFAULT_INIT_STEPS, help="offline steps (Alg. 1)"
    )
    parser.add_argument("--init-meta-lr", type=float, default=DEFAULT_INIT_META_LR,
                        help="offline η")  # fmt: skip
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--meta-every", type=int, default=1)
    parser.add_argument("--hypergrad", choices=("forward", "unroll"), default="forward")
    parser.add_argument("--eval-every", type=int, default=0, help="0: steps/50")
    parser.add_argument("--snapshot-every", type=int, default=0, help="0: steps/10")
    parser.add_argument("--label-noise", type=_fraction, default=0.0,
                        help="replace this fraction of training targets by noise "
                        "(adaloss.bench.datasets.corrupt_training_targets)")  # fmt: skip
    parser.add_argument("--check-fraction", type=_fraction, default=0.0,
                        help="hold this fraction of the validation split (or --check-from's) "
                        "out as a check split (curve.check_error)")  # fmt: skip
    parser.add_argument("--check-from", choices=("val", "train"), default="val",
                        help="carve the check split from the validation split or from the "
                        "training split (every method then trains on less)")  # fmt: skip
    parser.add_argument(
        "--data-dir", default=None, help="data folder (default: $ADALOSS_DATA or ~/.cache/adaloss)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", default="runs", help="result folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--save-states", action="store_true",
                        help="also save the final model and learned loss (seedN.pt)")  # fmt: skip


def _steps(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of steps >= 0, got {text}")
    return value


def _handover(text: str) -> int | str:
    return text if text == "final" else _steps(text)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def _horizon_steps(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number of steps >= 1 or inf, got {text}")
    return value


def _learn_lr(text: str) -> str | bool:
    if text not in ("longer", "off"):
        raise argparse.ArgumentTypeError(f"expected nothing, 'longer' or 'off', got {text!r}")
    return False if text == "off" else text


def _keep_fit(text: str) -> bool | str:
    if text not in ("agree", "off"):
        raise argparse.ArgumentTypeError(f"expected nothing, 'agree' or 'off', got {text!r}")
    return False if text == "off" else text


def recipe_choices(args: argparse.Namespace, method: str) -> dict:
    """``--loss``, ``--check-share`` and ``--learn-lr`` as the run uses them: an AdaLFL run
    takes its recipe's settings for the task's kind (``adaloss.recipes.for_task``) unless
    it was given one of them, written out, so the result's key names them as if they had
    been passed."""
    given = {"loss": args.loss, "check_share": args.check_share, "learn_lr": args.learn_lr}
    if method != "adalfl":
        return {**given, "loss": args.loss or "network"}
    task = adaloss.Regression(1) if args.task in REGRESSION_TASKS else adaloss.Classification(2)
    passed = passed_settings(**given, meta_optimizer=args.meta_anchor)  # AnchoredAdam's own
    recipe = for_task(get_recipe(args.recipe), task, passed)
    windows = with_arguments(
        recipe,
        handover=None if args.handover is None else (args.handover or False),
        check_every=None if args.check_every is None else (args.check_every or False),
    )
    return {
        "loss": args.loss or recipe.loss,
        "check_share": args.check_share if "check_share" in passed else windows.check_share,
        "learn_lr": args.learn_lr if "learn_lr" in passed else (recipe.learn_lr or None),
    }


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    """One RunConfig per (seed, model, method) that ``adaloss run``'s options ask for."""
    augmented = args.task in AUGMENTED_TASKS
    models = args.model.split(",") if args.model else PAPER_MODELS.get(args.task)
    if not models:
        raise SystemExit(f"no default model for task {args.task!r}: pass --model")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    paper = paper_training(args.task)
    defaults = {
        "steps": args.steps or PAPER_STEPS.get(args.task, 10_000),
        **{
            name: paper[name] if getattr(args, name) is None else getattr(args, name)
            for name in ("lr", "momentum", "weight_decay")
        },
    }
    shared = {
        name: getattr(args, name)
        for name in (
            "batch_size", "meta_objective", "meta_lr", "recipe", "guard", "horizon",
            "meta_anchor", "patience", "after_stop", "handover", "check_every",
            "lr_horizon", "step_length_meta_lr", "keep_fit", "init_steps",
            "init_meta_lr",
            "inner_steps", "meta_every", "hypergrad", "eval_every", "snapshot_every",
            "label_noise", "check_fraction", "check_from", "data_dir", "device",
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
            **recipe_choices(args, method),
        )  # fmt: skip
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for model in models
        for method in methods
    ]
    return configs
