"""``adaloss run``: train the paper's methods on a task over seeds, one JSON record per run.

For a seed, every method starts from the same θ_0 and sees the same training
batches in the same order (the offline phase draws from its own stream), so
differences between methods come from the methods. A finished result file
(``adaloss.bench.results``) is never recomputed: runs resume.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy
import timm
import torch
import torchopt
from torch import nn
from tqdm.auto import tqdm

import adaloss
import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_ models)
from adaloss.bench.batching import batches, eval_batches, full_batch
from adaloss.bench.config import DEFAULT_META_LR, LOSSES, RunConfig
from adaloss.bench.datasets import corrupt_training_targets, hold_out_check, load_dataset
from adaloss.bench.names import ERROR_RATE, MSE
from adaloss.bench.results import states_path, write_result
from adaloss.bench.step import training_step
from adaloss.timeline import LossTimeline


def _versions() -> dict[str, str]:
    return {
        "adaloss": adaloss.__version__,
        "torch": torch.__version__,
        "torchopt": torchopt.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _make_model(config: RunConfig, data) -> nn.Module:
    kwargs = {"num_classes": data.num_outputs}
    if config.model in ("adaloss_mlp", "adaloss_logistic"):
        kwargs["in_features"] = math.prod(data.input_shape)
    elif len(data.input_shape) == 3:
        kwargs["in_chans"] = data.input_shape[0]
    return timm.create_model(config.model, **kwargs)


@torch.no_grad()
def evaluate_error(
    model: nn.Module, task, ds, device, limit: int | None = None, metric=None
) -> float:
    """``task.error`` (or ``metric(outputs, targets)``, a batch mean) of ``model`` over ``ds``
    (its first ``limit`` examples), in eval mode."""
    return evaluate_metrics(model, ds, device, [task.error if metric is None else metric], limit)[0]


@torch.no_grad()
def evaluate_metrics(model: nn.Module, ds, device, metrics, limit: int | None = None) -> list:
    """Each of ``metrics`` (batch means of ``metric(outputs, targets)``) over ``ds``, from one
    pass of ``model`` in eval mode: a split read for its error and its loss runs the model once."""
    was_training = model.training
    model.eval()
    totals, count = [0.0] * len(metrics), 0
    for x, y in eval_batches(ds, batch_size=1024, device=device):
        if limit is not None and count >= limit:
            break
        outputs = model(x)
        totals = [t + float(m(outputs, y)) * len(x) for t, m in zip(totals, metrics, strict=True)]
        count += len(x)
    model.train(was_training)
    return [t / max(count, 1) for t in totals]


def _mean_predictor_error(data) -> float:
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
        training_only = self.opt is None or self.config.meta_objective == "training"
        xv, yv = (None, None) if training_only else next(self.val)
        return training_step(self.model, self.task, self.base, self.opt, (x, y, xv, yv))


def prepare_run(config: RunConfig, make_loss: Callable[[], nn.Module] | None = None) -> PreparedRun:
    """Build θ_0, ϕ_0 and the batch streams for ``config`` and run the offline phase.

    Seeds depend on ``config.seed`` only, so every method of a seed starts alike.
    ``make_loss`` builds a learned loss other than the one ``config.loss`` names (the probes
    in scripts/ use it); it is called after ϕ_0's seed is set, as ``config.loss`` is.
    """
    device = torch.device(config.device)
    data = load_dataset(config.task, config.data_dir, seed=config.seed)
    data = corrupt_training_targets(data, config.label_noise, config.seed)
    data = hold_out_check(data, config.check_fraction, 50_000 + config.seed, config.check_from)
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
            loss = (make_loss or LOSSES[config.loss])().to(device)
            recipe = config.recipe if config.method == "adalfl" else "paper"
            guard = None if config.guard is None else (config.guard or False)
            patience = None if config.patience is None else (config.patience or False)
            handover = None if config.handover is None else (config.handover or False)
            meta_optimizer = None
            if config.method == "adalfl" and config.meta_anchor is not None:
                eta = config.recipe_settings.meta_lr if config.meta_lr is None else config.meta_lr
                meta_optimizer = adaloss.AnchoredAdam(
                    [p for p in loss.parameters() if p.requires_grad], lr=eta,
                    anchor=config.meta_anchor,
                )  # fmt: skip
            opt = adaloss.MetaLossOptimizer(
                model, base, task, loss=loss, meta_optimizer=meta_optimizer,
                meta_lr=config.meta_lr, hypergrad=config.hypergrad,
                meta_every=config.meta_every, online=config.method == "adalfl", recipe=recipe,
                guard=guard if config.method == "adalfl" else None,
                horizon=config.horizon if config.method == "adalfl" else None,
                patience=patience if config.method == "adalfl" else None,
                after_stop=config.after_stop if config.method == "adalfl" else None,
                handover=handover if config.method == "adalfl" else None,
                check_every=None if config.method != "adalfl" or config.check_every is None
                else (config.check_every or False),
                check_share=None if config.method != "adalfl" or config.check_share is None
                else (config.check_share or False),
                # None: off, as the config's key says (the command writes the recipe's in)
                learn_lr=(config.learn_lr or False) if config.method == "adalfl" else None,
                lr_horizon=config.lr_horizon if config.method == "adalfl" else None,
                step_length_meta_lr=(
                    config.step_length_meta_lr if config.method == "adalfl" else None
                ),
                keep_fit=config.keep_fit if config.method == "adalfl" else None,
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


def run_one(config: RunConfig, progress: bool = True, states_to: Path | None = None) -> dict:
    """Train one (task, model, method, seed) and return its result record; with
    ``states_to``, also save the final model's and learned loss's ``state_dict`` there."""
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
    if getattr(opt, "step_length", None) is not None:  # learn_lr: r at every evaluation
        extra_curves["step_factor"] = []
    if data.check is not None:  # the task's error and its loss (no ties between models)
        extra_curves["check_error"], extra_curves["check_loss"] = [], []
    diverged = False

    def record(step: int) -> None:
        curve["step"].append(step)
        curve["train_error"].append(evaluate_error(model, task, data.train, device, limit=10_000))
        curve["val_error"].append(evaluate_error(model, task, data.val, device))
        curve["selection_error"].append(evaluate_error(model, task, data.selection, device))
        curve["test_error"].append(evaluate_error(model, task, data.test, device))
        if "check_error" in extra_curves:
            error, loss = evaluate_metrics(model, data.check, device, [task.error, task.loss])
            extra_curves["check_error"].append(error)
            extra_curves["check_loss"].append(loss)
        if "lr" in extra_curves:
            extra_curves["lr"].append(float(opt.lr.detach()))
        if "step_factor" in extra_curves:
            extra_curves["step_factor"].append(opt.step_factor)

    rule = getattr(opt, "handover_rule", None)
    windows = getattr(opt, "window", None) is not None  # step checks on validation batches
    if rule is not None and data.check is None and not windows:
        raise ValueError("a hand-over compares on a check split: pass --check-fraction")
    checking = rule is not None and data.check is not None
    check_batch = full_batch(data.check, device) if checking else None

    record(0)
    if timeline is not None:
        timeline.snapshot(0)
    bar = tqdm(range(1, config.steps + 1), disable=not progress, leave=False,
               desc=f"{config.row}/{config.model}/{config.key}/seed{config.seed}")  # fmt: skip
    for step in bar:
        diverged = not run.step()
        if diverged:
            break
        if step % eval_every == 0 or step == config.steps:
            if checking:  # may hand over to the plain-trained twin
                final = rule.patience == "final" and step == config.steps
                (opt.finish if final else opt.check)(*check_batch)
            record(step)
            if not math.isfinite(curve["test_error"][-1]):
                diverged = True
                break
        if timeline is not None and (step % snapshot_every == 0 or step == config.steps):
            timeline.snapshot(step)
    wall = time.perf_counter() - started
    if states_to is not None:
        _write_states(states_to, model, getattr(opt, "loss", None))

    final_test = curve["test_error"][-1] if not diverged else float("nan")
    return {
        "task": config.row,
        "model": config.model,
        "method": config.key,
        "label": config.label,
        "seed": config.seed,
        "metric": MSE if regression else ERROR_RATE,
        "num_classes": None if regression else data.num_outputs,
        # selection MSE of predicting the training targets' mean: a regression run that ends
        # no better than this constant has learned nothing (failures.is_collapsed)
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
            "stopped_at": getattr(opt, "stopped_at", None),
            "handed_over_at": getattr(opt, "handed_over_at", None),
            **({"check_error": extra_curves["check_error"][-1]} if data.check is not None else {}),
        },
        "curve": {**curve, **extra_curves},
        "loss_grid": None if timeline is None else timeline.to_dict(),
    }


def _write_states(path: Path, model: nn.Module, loss: nn.Module | None) -> None:
    """Atomic, like the record: what the run ended with, to study after it (scripts/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    states = {"model": model.state_dict(), "loss": None if loss is None else loss.state_dict()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(states, tmp)
    tmp.replace(path)


def run_configs(
    configs: Iterable[RunConfig], out: str | Path, progress: bool = True, save_states: bool = False
) -> None:
    """Run every config whose result file under ``out`` does not exist yet, and write it
    (with ``save_states``, the final θ and ϕ beside it: ``results.states_path``)."""
    for config in configs:
        path = config.result_path(out)
        if path.exists():
            print(f"done already: {path}")
            continue
        states_to = states_path(path) if save_states else None
        record = run_one(config, progress=progress, states_to=states_to)
        write_result(path, record)
        final = record["final"]
        status = (  # selection error: test error is for the report, not for watching runs
            "DIVERGED"
            if final["diverged"]
            else f"selection {record['metric']} {final['selection_error']:.4f}"
        )
        print(f"{path}: {status} ({record['wall_time_s']:.0f} s)", flush=True)
