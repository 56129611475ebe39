"""The README's loop on data sets outside the benchmark rows: plain SGD against the defaults.

    python scripts/outside_data_probe.py                       # every data set, 5 seeds
    python scripts/outside_data_probe.py --sets wine --seeds 1 --epochs 2
    python scripts/outside_data_probe.py --sets unscaled --seeds 30 --methods plain

The library is used on data and scripts that are not in this repository, so this trains a
small MLP the way a user would — SGD with momentum 0.9, batches of 32, the lr a user would
pick for standardized inputs (0.01; regression on unscaled targets at 1e-3, where plain SGD
is at the edge of stability, and at 1e-4; with ``--sets standardized`` the same regression
with targets divided by their std, at 0.01 and 1e-3) — on scikit-learn data sets, none of
which any choice in BENCHMARKS.md was made on. Columns, all from the same θ_0 and batches per seed:

- *plain*: ``loss.backward(); optimizer.step()`` on the task loss;
- *default*: ``MetaLossOptimizer(model, optimizer, task)``, ``initialize()``, ``step(x, y,
  x_val, y_val)`` — the quick start with every default (since session 28 *monotone-share* on
  a regression and *learn-lr* on a classification; before it, *network*);
- *hand-over*: the same with ``handover=5``, half of the validation split held out as the
  check split (``check`` after every epoch) — the README's safest configuration measured;
- *guard1* (only with ``--methods``): the defaults with ``guard=1``, the learned loss never
  pushing harder than the task loss;
- *frozen* (only with ``--methods``): the defaults with ``meta_lr=0``, the warm-started loss
  never adapting — plain training up to the warm start's fit;
- *hand-over-val* (only with ``--methods``): ``handover=5`` checked every epoch on the whole
  validation split, which also feeds the meta-objective (no split held out);
- *step* (only with ``--methods``): the defaults with ``horizon="step"``, the meta-objective
  at θ_{t+1} however far momentum carries θ;
- *eta1e-4* (only with ``--methods``): the defaults with ``meta_lr=1e-4``;
- *hand-over-auto* (only with ``--methods``): ``handover=5, check_every=200`` — ``step``'s
  own check on the validation batches of every 200 steps, no ``check`` call (the default
  since session 20);
- *unchecked* (only with ``--methods``): ``recipe="unchecked"``, the default before session
  20, which the *default* column of every command run before it measured.
- *hand-over-share* (only with ``--methods``): the default with ``check_share=0.5``, half of
  the validation examples (by content) kept from the meta-objective for ``step``'s checks.
- *learn-lr* (only with ``--methods``): the default with ``learn_lr=True``, the base step's
  length learned beside the loss (``adaloss.steplength``).
- *learn-longer* (only with ``--methods``): the same with ``learn_lr="longer"`` (r ≥ 1).
- *learn-longer-h200* (only with ``--methods``): that with ``lr_horizon=200``, a's
  hypergradient through about 200 steps (``adaloss.steptrace``).
- *keep-fit* (only with ``--methods``): the default with ``keep_fit=True``, each meta-gradient
  projected off the directions that raise the task loss on the training batch
  (``adaloss.keepfit``).
- *keep-agree* (only with ``--methods``): the default with ``keep_fit="agree"``, a conflicting
  meta-gradient dropped whole.
- *monotone* (only with ``--methods``): on a regression, the default with
  ``loss=MonotoneLossNetwork()``, whose slope has the sign of the error for every ϕ; on a
  classification, the default itself.
- *monotone-share* (only with ``--methods``): on a regression, *monotone* with
  ``check_share=0.5``; on a classification, the default itself.
- *network* (only with ``--methods``): the default before session 28: ``LossNetwork`` on
  a regression, no learned step length on a classification.

Every column but *default* is the configuration it was before session 28: on a regression
it names its learned loss (``LossNetwork`` unless it says otherwise), on a classification it
learns no step length unless it says so. So a command run before session 28 still runs what
it measured, except its *default* column, which is now *monotone-share* on a regression and
the default with ``learn_lr=True`` (*learn-lr*) on a classification.

``--selection`` carves a fixed 15 % of the training part out as a selection split that no
training or meta step sees (so every method trains on fewer examples than without it) and
prints its error, for choices; ``--selection --read test`` prints the test error of the same
runs, read once for a report.

Plain training does not read the validation split (as in the benchmark rows). Test error is
the fixed 25 % split's; a run whose error is not finite, or above 100 × plain training's
median (blown up while staying finite), is counted as failed. Prints one Markdown row per
(data set, lr): plain training's mean ± std over the seeds it did not fail, then each
method's paired mean difference from it.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import adaloss
from adaloss.recipes import LOSSES

METHODS = (
    "plain", "default", "hand-over", "guard1", "frozen", "hand-over-val", "step", "eta1e-4",
    "hand-over-auto", "unchecked", "hand-over-share", "learn-lr",
    "learn-longer", "learn-longer-h200", "keep-fit", "keep-agree", "monotone",
    "monotone-share", "network", "slr0.1", "slr0.01",
)  # fmt: skip


def _load(name: str):
    """(x, y, task) of one data set; x standardized later, y as the task takes it."""
    from sklearn import datasets

    if name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
        return x, y.astype(np.float32), adaloss.BinaryClassification()
    if name in ("wine", "iris"):
        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        return x, y, adaloss.Classification(3)
    if name == "classes20":
        x, y = datasets.make_classification(
            3000, 30, n_informative=20, n_classes=20, n_clusters_per_class=1, random_state=0
        )
        return x, y, adaloss.Classification(20)
    if name == "linnerud":  # three targets, standardized
        x, y = datasets.load_linnerud(return_X_y=True)
        return x, ((y - y.mean(0)) / y.std(0)).astype(np.float32), adaloss.Regression(3)
    if name in ("unscaled", "standardized"):  # targets as generated (std ≈ 170), or / std
        x, y = datasets.make_regression(800, 20, n_informative=10, noise=20.0, random_state=0)
        y = (y - y.mean()) / y.std() if name == "standardized" else y
        return x, y.astype(np.float32)[:, None], adaloss.Regression(1)
    raise ValueError(f"unknown data set {name!r}")


SETS = {  # name: the lrs a user would try
    "breast_cancer": (0.01,),
    "wine": (0.01,),
    "iris": (0.01,),
    "classes20": (0.01,),
    "linnerud": (0.01,),
    "unscaled": (1e-3, 1e-4),
    "standardized": (0.01, 1e-3),  # only with --sets: the same data, targets / std
}
DEFAULT_SETS = ("breast_cancer", "wine", "iris", "classes20", "linnerud", "unscaled")


def splits(name: str, seed: int, read: str = "test", selection: bool = False):
    """Training and validation split, the split to read and the task: test is a fixed 25 %;
    with ``selection`` a fixed 15 % of the rest is held out too; validation is a seeded 15 %
    of what remains."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if read == "selection" and not selection:
        raise ValueError("reading the selection split needs selection=True")
    x, y, task = _load(name)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    if selection:
        x_rest, x_sel, y_rest, y_sel = train_test_split(
            x_rest, y_rest, test_size=0.15, random_state=1
        )
        if read == "selection":
            x_test, y_test = x_sel, y_sel
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.15, random_state=seed
    )
    scaler = StandardScaler().fit(x_train)

    def tensors(a, b):
        return torch.tensor(scaler.transform(a), dtype=torch.float32), torch.tensor(b)

    return tensors(x_train, y_train), tensors(x_val, y_val), tensors(x_test, y_test), task


def options_for(method: str, task: adaloss.Task) -> dict:
    """A column's ``MetaLossOptimizer`` options on ``task`` (see the module's docstring)."""
    options = {
        "hand-over": {"handover": 5},
        "hand-over-val": {"handover": 5},
        "guard1": {"guard": 1.0},
        "frozen": {"meta_lr": 0.0},
        "step": {"horizon": "step"},
        "eta1e-4": {"meta_lr": 1e-4},
        "hand-over-auto": {"handover": 5, "check_every": 200},
        "unchecked": {"recipe": "unchecked"},
        "hand-over-share": {"check_share": 0.5},
        "learn-lr": {"learn_lr": True},
        "learn-longer": {"learn_lr": "longer"},
        "learn-longer-h200": {"learn_lr": "longer", "lr_horizon": 200},
        "keep-fit": {"keep_fit": True},
        "keep-agree": {"keep_fit": "agree"},
        # session 29, on today's default: the step length at its own Adam rate
        **{f"slr{r:g}": {"learn_lr": True, "step_length_meta_lr": r} for r in (0.1, 0.01)},
    }
    todays = method == "default" or method.startswith("slr")  # the library's default, as is
    options = options.get(method, {})
    if todays:
        return options
    if isinstance(task, adaloss.Regression):
        # every other column was measured before session 28, when the default built
        # LossNetwork on regression too: it names that loss, or the monotone one
        monotone = method in ("monotone", "monotone-share")
        options = {**options, "loss": (LOSSES["monotone" if monotone else "network"])()}
        if method == "monotone-share":
            options["check_share"] = 0.5
    else:  # ... and learned no step length on classification
        options = {"learn_lr": False, **options}
    return options


def train(
    name: str,
    seed: int,
    method: str,
    lr: float,
    epochs: int,
    read: str = "test",
    selection: bool = False,
) -> float:
    """The error of one run on the split ``read`` (see ``splits``)."""
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te), task = splits(name, seed, read, selection)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(TensorDataset(x_tr, y_tr), 32, shuffle=True, generator=generator)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x_tr.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, task.num_outputs)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if method == "plain":
        for _ in range(epochs):
            for x, y in train_loader:
                optimizer.zero_grad()
                task.loss(model(x), y).backward()
                optimizer.step()
    else:
        check = (x_val, y_val) if method == "hand-over-val" else None
        if method == "hand-over":
            half = len(x_val) // 2
            check, (x_val, y_val) = (x_val[:half], y_val[:half]), (x_val[half:], y_val[half:])
        val_loader = DataLoader(TensorDataset(x_val, y_val), 32, shuffle=True, generator=generator)
        options = options_for(method, task)
        opt = adaloss.MetaLossOptimizer(model, optimizer, task, **options)
        opt.initialize(train_loader)
        for _ in range(epochs):
            for (x, y), (xv, yv) in zip(train_loader, itertools.cycle(val_loader)):
                opt.step(x, y, xv, yv)
            if check is not None:
                opt.check(*check)
    with torch.no_grad():
        return float(task.error(model(x_te), y_te))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--methods", default=",".join(METHODS[:3]), help="plain first")
    parser.add_argument("--selection", action="store_true", help="hold out a selection split")
    parser.add_argument("--read", choices=("test", "selection"), default=None)
    args = parser.parse_args()
    read = args.read or ("selection" if args.selection else "test")
    if read == "selection" and not args.selection:
        parser.error("--read selection needs --selection")
    methods = args.methods.split(",")
    if methods[0] != "plain" or not set(methods) <= set(METHODS):
        parser.error(f"--methods: plain, then any of {', '.join(METHODS[1:])}")
    torch.set_num_threads(1)
    header = ["data set", "lr", "plain"]
    header += [f"{m}: Δ (wins / losses), failed" for m in methods[1:]] + ["seconds"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "--:|" * (len(header) - 1))
    for name in args.sets.split(","):
        for lr in SETS[name]:
            started = time.perf_counter()
            errors = {m: [] for m in methods}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # counted below, not printed per step
                for seed, method in itertools.product(
                    range(args.first_seed, args.first_seed + args.seeds), methods
                ):
                    errors[method].append(
                        train(name, seed, method, lr, args.epochs, read, args.selection)
                    )
            cells = [_plain_cell(errors["plain"])]
            cells += [_paired_cell(errors[m], errors["plain"]) for m in methods[1:]]
            seconds = time.perf_counter() - started
            print(f"| {name} | {lr:g} | " + " | ".join(cells) + f" | {seconds:.0f} |", flush=True)


def _failed(error: float, plain: list[float]) -> bool:
    finite = [e for e in plain if math.isfinite(e)]
    return not math.isfinite(error) or bool(finite) and error > 100 * statistics.median(finite)


def _plain_cell(errors: list[float]) -> str:
    finite = [e for e in errors if not _failed(e, errors)]
    failed = len(errors) - len(finite)
    mean = f"{statistics.fmean(finite):.4g}" if finite else "–"
    spread = f" ± {statistics.stdev(finite):.2g}" if len(finite) > 1 else ""
    return mean + spread + (f", {failed} failed" if failed else "")


def _paired_cell(errors: list[float], plain: list[float]) -> str:
    failed = sum(_failed(e, plain) for e in errors)
    pairs = [
        (e, p)
        for e, p in zip(errors, plain, strict=True)
        if not _failed(e, plain) and not _failed(p, plain)
    ]
    if not pairs:
        return f"–, {failed} failed"
    diff = statistics.fmean(e - p for e, p in pairs)
    wins = sum(e < p for e, p in pairs)
    losses = sum(e > p for e, p in pairs)
    return f"{diff:+.4g} ({wins} / {losses})" + (f", {failed} failed" if failed else "")


if __name__ == "__main__":
    main()
