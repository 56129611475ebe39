"""A task outside the benchmark rows (issue 12): is the default recipe at least as good as
plain training when the base learning rate is already a good one?

The synthetic 10-class teacher data of ``examples/ddp_train.py`` (20 inputs, labels from a
fixed random linear teacher), a 20-64-10 MLP, SGD(lr 0.1, momentum 0.9) unless
``--optimizer/--lr/--momentum`` say otherwise, batch 64, one process. Plain training on
cross-entropy against ``MetaLossOptimizer`` with the default recipe and variants; prints
the error on a held-out set of 2,048 examples for seeds 0-2 and how many steps the guard
acted on:

    python scripts/teacher_probe.py 1000 plain,step,eta1e-5,kappa1,kappa1-eta1e-4,kappa1.25
    python scripts/teacher_probe.py 1000 plain,step,default --optimizer adam --lr 0.003
    python scripts/teacher_probe.py 1000 plain,step,default --task regression --lr 0.01

``--task regression``: a random tanh network plus noise, 512 training examples, test MSE.
The *default* column of every command run before session 28 is today's *network*.
``--read selection``: the error on a second held-out set of the same size (a fresh draw),
for choices, so that the first is read once, for a report. ``--trace N``: every N steps of
each run, its learned step factor r (``learn_lr``; 1 otherwise), training error and the read
split's error, and whether it has handed over.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

import adaloss
from adaloss.recipes import LOSSES

# Variants of the recipe of the time (L_T at θ_{t+1}, now ``recipe="step"``) keep their names
# so the commands in BENCHMARKS.md still run what they measured; "default" is the library's.
# Every column but "default" was measured before session 28, when the default built
# LossNetwork on regression too and learned no step length on classification: each names its
# loss, which on a classification stands for learn_lr=False unless the column sets it.
VARIANTS = {
    "step": {"recipe": "step"},
    "eta1e-4": {"recipe": "step", "meta_lr": 1e-4},
    "eta1e-5": {"recipe": "step", "meta_lr": 1e-5},
    "eta0": {"recipe": "step", "meta_lr": 0.0},
    "kappa1": {"recipe": "step", "guard": 1.0},
    "kappa1-eta1e-4": {"recipe": "step", "guard": 1.0, "meta_lr": 1e-4},
    "kappa1.25": {"recipe": "step", "guard": 1.25},
    "default-eta1e-4": {"meta_lr": 1e-4},  # today's default (the momentum horizon) at η 1e-4
    "default-handover": {"handover": 5, "check_every": 200},  # step's own check on validation
    # the default before session 20, which "default" ran in every command before it
    "unchecked": {"recipe": "unchecked"},
    "default-share": {"check_share": 0.5},  # half the validation examples kept for the checks
    "learn-lr": {"learn_lr": True},  # the default with the step's length learned too
    "learn-longer": {"learn_lr": "longer"},  # the same, r never below 1
    "learn-longer-h200": {"learn_lr": "longer", "lr_horizon": 200},  # a's horizon ~200 steps
    "keep-fit": {"keep_fit": True},  # ϕ's meta-gradient kept from raising the training loss
    "keep-agree": {"keep_fit": "agree"},  # ϕ steps only where the two meta-gradients agree
}
CONFIGS = {
    "plain": None,
    "default": {},
    "network": {"loss": "network"},  # the default before session 28, on both kinds of task
    **{name: {**options, "loss": "network"} for name, options in VARIANTS.items()},
    "monotone": {"loss": "monotone"},  # on regression, a loss whose slope has the error's sign
    # on regression, that loss with half the validation examples kept for the checks (the
    # default since session 28)
    "monotone-share": {"loss": "monotone", "check_share": 0.5},
    # session 29: today's default with the step length learned at its own Adam rate (on
    # regression added to the default's monotone pair)
    **{f"slr{r:g}": {"learn_lr": True, "step_length_meta_lr": r} for r in (0.1, 0.01)},
}


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    teacher = torch.randn(20, 10, generator=torch.Generator().manual_seed(1234))
    x = torch.randn(n, 20, generator=torch.Generator().manual_seed(seed))
    return x, (x @ teacher).argmax(dim=1)


def synthetic_regression(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random tanh network plus noise (std 0.1); few examples, so more steps can overfit."""
    g = torch.Generator().manual_seed(1234)
    hidden, out = torch.randn(20, 32, generator=g) / 20**0.5, torch.randn(32, 1, generator=g)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return x, torch.tanh(x @ hidden) @ out / 32**0.5 + 0.1 * torch.randn(n, 1, generator=g)


TASKS = {  # name: (adaloss task, data, (training, validation, held-out) sizes)
    "classification": (adaloss.Classification(10), synthetic, (4096, 1024, 2048)),
    "regression": (adaloss.Regression(1), synthetic_regression, (512, 128, 2048)),
}


def options_for(options: dict | None, task: adaloss.Task) -> dict | None:
    """A column's ``MetaLossOptimizer`` options on ``task``; a column measured before session
    28 names its loss, which stands for the default of its time on either kind of task."""
    if options is None or "loss" not in options:
        return options
    options = dict(options)
    name = options.pop("loss")
    if isinstance(task, adaloss.Regression):
        return {**options, "loss": LOSSES[name]()}
    options = {} if name == "monotone" else options  # monotone: the default itself
    return {"learn_lr": False, **options}  # no learned step length on classification then


def run(
    options: dict | None,
    steps: int,
    seed: int,
    base_options: dict,
    task_name: str,
    read: str = "test",
    trace: int = 0,
) -> tuple[float, int]:
    task, data, sizes = TASKS[task_name]
    torch.manual_seed(seed)
    outputs = 10 if task_name == "classification" else 1
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, outputs))
    kind = base_options.pop("optimizer", "sgd")
    if kind == "adam":
        base = torch.optim.Adam(model.parameters(), lr=base_options["lr"])
    else:
        base = torch.optim.SGD(model.parameters(), **base_options)
    options = options_for(options, task)
    opt = None if options is None else adaloss.MetaLossOptimizer(model, base, task, **options)
    (xt, yt), (xv, yv), (xs, ys) = (data(n, split) for split, n in enumerate(sizes))
    if read == "selection":
        xs, ys = data(sizes[2], len(sizes))
    g = torch.Generator().manual_seed(1 + seed)
    for step in range(1, steps + 1):
        i = torch.randint(0, len(xt), (64,), generator=g)
        j = torch.randint(0, len(xv), (64,), generator=g)
        if opt is None:
            base.zero_grad()
            task.loss(model(xt[i]), yt[i]).backward()
            base.step()
        else:
            opt.step(xt[i], yt[i], xv[j], yv[j])
        if trace and step % trace == 0:
            with torch.no_grad():
                fit, held = float(task.error(model(xt), yt)), float(task.error(model(xs), ys))
            r = 1.0 if opt is None else opt.step_factor
            over = None if opt is None else opt.handed_over_at
            print(f"  seed {seed} step {step}: r {r:.2f}, training error {fit:.4f}, "
                  f"{read} error {held:.4f}, handed over at {over}")  # fmt: skip
    with torch.no_grad():
        error = float(task.error(model(xs), ys))
    return error, 0 if opt is None else opt.guarded_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", type=int)
    parser.add_argument("configs", help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--task", choices=TASKS, default="classification")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    parser.add_argument("--read", choices=("test", "selection"), default="test")
    parser.add_argument("--trace", type=int, default=0, help="print each run every N steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = {"optimizer": args.optimizer, "lr": args.lr}
    setting = f"{args.task}, "
    if args.optimizer == "sgd":
        base["momentum"] = args.momentum
    setting += ", ".join(f"{k} {v}" for k, v in base.items())
    plain = None
    for name in args.configs.split(","):
        runs = [
            run(CONFIGS[name], args.steps, s, dict(base), args.task, args.read, args.trace)
            for s in range(args.first_seed, args.first_seed + args.seeds)
        ]
        errors = [e for e, _ in runs]
        guarded = " ".join(str(n) for _, n in runs)
        label = "held-out" if args.read == "test" else "selection"
        line = f"{setting}, {args.steps} steps {name:15s} {label} error "
        line += " ".join(f"{e:.4f}" for e in errors) + f"  guarded {guarded}"
        if name == "plain":
            plain = errors
            if len(errors) > 1:
                line += f"  std {statistics.stdev(errors):.4f}"
        elif plain is not None:  # paired with plain training, seed by seed
            diffs = [e - p for e, p in zip(errors, plain, strict=True)]
            wins, losses = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
            line += f"  vs plain {statistics.fmean(diffs):+.4f} ({wins} / {losses})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
