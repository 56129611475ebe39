"""Named recipes: how ϕ starts, how fast it adapts online, whether the guard is on, and
where the meta-objective is measured.

``paper`` is Algorithms 1 then 2 at Appendix C's settings, kept for reproduction: the
offline phase, online η = 1e-5, no guard, L_T at θ_{t+1}. ``default`` is the recipe chosen
on held-out selection data (BENCHMARKS.md, "Choosing the default recipe", "The momentum
horizon" and "The default with a hand-over judged on the validation batches"): the
task-loss warm start (``adaloss.warmstart``), online adaptation at η = 1e-3, the
gradient-scale guard at κ = 2, L_T measured where the step's momentum carries θ, and a
plain-trained twin that the run hands over to once it has had the lower error on the
validation batches of 5 consecutive 200-step windows; on a ``Regression`` given neither a
loss nor ``check_share``, ``MonotoneLossNetwork`` with half the validation examples kept
for those windows (``on_regression``), and on a classification given neither ``learn_lr``
nor a meta-optimizer, the learned step length (``on_classification``) — both since session
28, each adopted by a rule written before its ten-seed runs (BENCHMARKS.md, "The monotone
loss with half the validation examples kept for the checks" and "The learned step length on
classification only"). ``unchecked`` is the default without the twin (the default until
session 20).
In the screening (5 tasks × 3 seeds, 2,000 steps) η = 1e-3 had the lower selection error
than η = 1e-4 on crime, Diabetes and California and tied on digits + logistic. With SGD
momentum 0.9 at 10,000 steps the momentum horizon's selection error was no higher than
L_T at θ_{t+1}'s on any row (the seeds both have: 1–2 per row); without momentum the two
are the same computation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from adaloss.handover import check_check_every, check_handover
from adaloss.holdout import check_check_share
from adaloss.keepfit import check_keep_fit
from adaloss.losses import LossNetwork, MonotoneLossNetwork
from adaloss.patience import check_patience
from adaloss.steplength import check_learn_lr, check_step_length_meta_lr
from adaloss.steptrace import check_lr_horizon
from adaloss.tasks import BinaryClassification, Classification, Regression

STARTS = ("warm_start", "offline")
AFTER_STOP = ("task_loss", "frozen")  # what trains θ once patience stops ϕ
HORIZONS = ("step", "momentum")  # or a number H >= 1: L_T at θ_t + H·U for every parameter
#: The learned losses a recipe builds when the user passes none, by name.
LOSSES = {"network": LossNetwork, "monotone": MonotoneLossNetwork}
#: The settings a recipe may set apart for one kind of task (``on_regression``,
#: ``on_classification``).
TASK_SETTINGS = ("loss", "check_share", "learn_lr")


def check_horizon(horizon) -> None:
    """Refuse a horizon that is neither one of HORIZONS nor a finite number >= 1."""
    if horizon in HORIZONS:
        return
    if isinstance(horizon, bool) or not isinstance(horizon, int | float):
        raise ValueError(f"horizon must be one of {HORIZONS} or a number >= 1, got {horizon!r}")
    if not 1.0 <= horizon < float("inf"):
        raise ValueError(f"a numeric horizon must be finite and >= 1, got {horizon!r}")


@dataclass(frozen=True)
class Recipe:
    """One configuration of the method; ``MetaLossOptimizer(recipe=...)`` takes it by name."""

    name: str
    start: str  # "warm_start" (fit ϕ to the task loss's gradient) or "offline" (Algorithm 1)
    meta_lr: float  # online η
    guard: float | None  # bound κ of GradientScaleGuard; None: no guard
    offline_steps: int = 2500  # Algorithm 1's outer steps (start="offline")
    offline_meta_lr: float = 1e-3  # Algorithm 1's η
    inner_steps: int = 1
    # L_T at θ_{t+1} ("step"), where momentum carries θ ("momentum"), or at θ_t + H·U (H)
    horizon: str | float = "step"
    # stop adapting ϕ and train on the task loss once the meta-objective has not improved
    # for this many steps (``adaloss.patience``); None: adapt to the end
    patience: int | None = None
    after_stop: str = "task_loss"  # then train on the task loss, or on M_ϕ frozen ("frozen")
    # hand over to a plain-trained twin once it has had the lower check error at this many
    # consecutive ``check`` calls (``adaloss.handover``); None: no twin
    handover: int | None = None
    # make those checks in ``step``, on the validation batches of every this many steps
    check_every: int | None = None
    # keep this share of the validation examples (by content) from the meta-objective, for
    # those checks alone (``adaloss.holdout``); None: the checks see what ϕ is fitted to
    check_share: float | None = None
    # learn the base step's length beside ϕ: every update times r = e^a, a stepped by the
    # meta-optimizer with ϕ (``adaloss.steplength``; "longer": r ≥ 1); False: the lr as it is
    learn_lr: bool | str = False
    # with learn_lr: a's hypergradient follows each step's length over about this many steps
    # (``adaloss.steptrace``; math.inf: the whole run); None: this step's alone
    lr_horizon: float | None = None
    # with learn_lr: the meta-optimizer's rate for a (Adam's step moves log r by about this
    # much); None: ϕ's, η (``adaloss.steplength``)
    step_length_meta_lr: float | None = None
    # project ϕ's meta-gradient off the directions that raise L_T on the training batch
    # (True), or drop it where it would raise it ("agree"): ``adaloss.keepfit``
    keep_fit: bool | str = False
    # the learned loss built when the user passes none: a name of LOSSES
    loss: str = "network"
    # on a Regression task, or a Classification or BinaryClassification one, these settings
    # replace the ones above unless the user passed one of them (``for_task``): (name,
    # value) pairs of TASK_SETTINGS
    on_regression: tuple[tuple[str, object], ...] = ()
    on_classification: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {self.loss!r}")
        for kind in ("on_regression", "on_classification"):
            settings = getattr(self, kind)
            unknown = sorted({k for k, _ in settings} - set(TASK_SETTINGS))
            if unknown:
                raise ValueError(f"{kind} sets only {TASK_SETTINGS}, not {unknown}")
            if settings:  # the recipe for that kind of task must be valid too
                replace(self, **dict(settings), on_regression=(), on_classification=())
        check_horizon(self.horizon)
        if self.meta_lr < 0:
            raise ValueError(f"meta_lr must be >= 0, got {self.meta_lr}")
        if self.guard is not None and not self.guard > 0:
            raise ValueError(f"guard must be None or > 0, got {self.guard}")
        check_patience(self.patience)
        check_handover(self.handover)
        check_check_every(self.check_every, self.handover)
        check_check_share(self.check_share, self.check_every)
        check_learn_lr(self.learn_lr)
        check_lr_horizon(self.lr_horizon)
        if self.lr_horizon is not None and not self.learn_lr:
            raise ValueError("lr_horizon is the learned step length's horizon: it needs learn_lr")
        check_step_length_meta_lr(self.step_length_meta_lr, self.learn_lr)
        if self.learn_lr and self.start != "warm_start":
            raise ValueError(
                "learn_lr needs start='warm_start': the offline phase (Algorithm 1) learns ϕ alone"
            )
        check_keep_fit(self.keep_fit, recipe=True)
        if self.keep_fit and self.lr_horizon is not None:
            raise ValueError("keep_fit projects one step's meta-gradient: it refuses lr_horizon")
        if self.after_stop not in AFTER_STOP:
            raise ValueError(f"after_stop must be one of {AFTER_STOP}, got {self.after_stop!r}")

    def describe(self) -> str:
        """``repr``'s part: the name and the settings every recipe sets, then each option
        that is on (every named recipe has them off, so they show only when passed)."""
        shown = ["name", "guard", "patience", "after_stop", "handover", "check_every"]
        shown += [
            k
            for k in ("check_share", "learn_lr", "lr_horizon", "step_length_meta_lr", "keep_fit")
            if getattr(self, k)
        ]
        return ", ".join(f"{'recipe' if k == 'name' else k}={getattr(self, k)!r}" for k in shown)


def passed_settings(loss=None, check_share=None, learn_lr=None, meta_optimizer=None) -> set[str]:
    """The names of TASK_SETTINGS a user of ``MetaLossOptimizer`` set (a meta-optimizer of
    their own cannot hold the learned step length, so it counts as setting learn_lr)."""
    given = {"loss": loss, "check_share": check_share, "learn_lr": learn_lr}
    passed = {name for name, value in given.items() if value is not None}
    return passed | ({"learn_lr"} if meta_optimizer is not None else set())


def for_task(recipe: Recipe, task: object, passed: Iterable[str] = ()) -> Recipe:
    """The recipe as it runs on ``task``, with no per-task settings left: on a ``Regression``
    its ``on_regression`` settings replace its own, on a ``Classification`` or
    ``BinaryClassification`` its ``on_classification`` ones — as a unit, unless the user
    ``passed`` any of them (names of TASK_SETTINGS): the default's regression pair was
    measured together, and neither half alone passed (BENCHMARKS.md)."""
    settings = ()
    if isinstance(task, Regression):
        settings = recipe.on_regression
    elif isinstance(task, Classification | BinaryClassification):
        settings = recipe.on_classification
    if {name for name, _ in settings} & set(passed):
        settings = ()
    return replace(recipe, **dict(settings), on_regression=(), on_classification=())


RECIPES = {
    "default": Recipe(
        "default",
        start="warm_start",
        meta_lr=1e-3,
        guard=2.0,
        horizon="momentum",
        handover=5,
        check_every=200,
        on_regression=(("loss", "monotone"), ("check_share", 0.5)),
        on_classification=(("learn_lr", True),),
    ),  # fmt: skip
    "paper": Recipe("paper", start="offline", meta_lr=1e-5, guard=None),
    # The default until session 20 (2026-12-07), without the hand-over: result folders of
    # that time name it "adalfl_default" (BENCHMARKS.md, "The default with a hand-over
    # judged on the validation batches").
    "unchecked": Recipe(
        "unchecked", start="warm_start", meta_lr=1e-3, guard=2.0, horizon="momentum"
    ),
    # The default until 2026-12-05, kept for the runs that used it: L_T at θ_{t+1} however
    # far momentum carries θ. Result folders of that time name it "adalfl_default" and
    # today's default "adalfl_horizon" (BENCHMARKS.md, "The momentum horizon").
    "step": Recipe("step", start="warm_start", meta_lr=1e-3, guard=2.0),
}


def get_recipe(recipe: str | Recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[recipe]


def with_arguments(
    recipe: str | Recipe,
    meta_lr: float | None = None,
    guard: float | bool | None = None,
    horizon: str | float | None = None,
    patience: int | bool | None = None,
    after_stop: str | None = None,
    handover: int | str | bool | None = None,
    check_every: int | bool | None = None,
    check_share: float | bool | None = None,
    learn_lr: bool | str | None = None,
    lr_horizon: float | bool | None = None,
    keep_fit: bool | str | None = None,
    step_length_meta_lr: float | bool | None = None,
) -> Recipe:
    """The recipe as ``MetaLossOptimizer``'s arguments change it: ``None`` keeps the
    recipe's value, ``False`` turns an option off. Every value is checked here, before the
    optimizer builds anything; the recipe's windows and share go with its hand-over only."""
    recipe = get_recipe(recipe)
    check_learn_lr(learn_lr)
    check_keep_fit(keep_fit)
    if lr_horizon is not False:
        check_lr_horizon(lr_horizon)
    if step_length_meta_lr is not None and step_length_meta_lr is not False:
        check_step_length_meta_lr(step_length_meta_lr, True)
    if patience is not None and patience is not False:
        check_patience(patience)
    if handover is not None and handover is not False:
        check_handover(handover)
    handover = recipe.handover if handover is None else (handover or None)
    if check_every is None:  # the recipe's windows go with its number of checks
        check_every = recipe.check_every if isinstance(handover, int) else None
    elif check_every is False:
        check_every = None
    else:
        check_check_every(check_every, handover)
    if check_share is None:  # the recipe's share goes with windows
        check_share = recipe.check_share if check_every is not None else None
    elif check_share is False:
        check_share = None
    else:
        check_check_share(check_share, check_every)
    if guard is not None and guard is not False:
        if isinstance(guard, bool) or not isinstance(guard, int | float) or not guard > 0:
            raise ValueError(f"guard must be a bound > 0, None or False; got {guard!r}")
    return replace(
        recipe,
        meta_lr=recipe.meta_lr if meta_lr is None else meta_lr,
        guard=recipe.guard if guard is None else (None if guard is False else float(guard)),
        horizon=recipe.horizon if horizon is None else horizon,
        patience=recipe.patience if patience is None else (patience or None),
        after_stop=recipe.after_stop if after_stop is None else after_stop,
        handover=handover,
        check_every=check_every,
        check_share=check_share,
        learn_lr=recipe.learn_lr if learn_lr is None else learn_lr,
        lr_horizon=recipe.lr_horizon if lr_horizon is None else (lr_horizon or None),
        keep_fit=recipe.keep_fit if keep_fit is None else keep_fit,
        step_length_meta_lr=(
            recipe.step_length_meta_lr
            if step_length_meta_lr is None
            else (step_length_meta_lr or None)
        ),
    )
