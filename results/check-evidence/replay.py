"""Replays one committed default run and records, at every hand-over window, the paired
per-example difference (learned loss's model − plain twin) on the window's check examples,
grouped by distinct example (content key): its mean, its standard deviation across the
distinct examples and their number. Selection and check data only; no test error is read.

    PYTHONPATH=. python results/check-evidence/replay.py diabetes adaloss_mlp KEY SEED

The run is the committed one bit for bit (asserted on the final selection error when the
run ends as the committed file did). Until the first hand-over of any rule that hands over
no later than the committed run's, that rule's decisions depend only on what this records.
"""

import json
import sys

import torch
import torch.nn.functional as F

from adaloss.bench.config import RunConfig
from adaloss.bench.runner import run_one
from adaloss.handover import ValidationWindow, check_error
from adaloss.holdout import ContentSplit
from adaloss.tasks import Regression

torch.set_num_threads(1)  # as the committed runs (--threads 1)
task_name, model_name, key, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
folder = f"results/default-confirm/{task_name}/{model_name}"
record = json.load(open(f"{folder}/{key}/seed{seed}.json"))
hasher = ContentSplit(0.5)  # only its keys(): a function of each example's values
rows: list[tuple[torch.Tensor, torch.Tensor]] = []
windows = []
add, take = ValidationWindow.add, ValidationWindow.take


@torch.no_grad()
def per_example(model, task, x, y):
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        out = model(x)
    finally:
        for m, training in modes:
            m.training = training
    if isinstance(task, Regression):
        o, t = task.learned_loss_inputs(out, y)
        return F.mse_loss(o, t, reduction="none").mean(1).double()
    return (out.argmax(dim=1) != y).double()


def recorded_add(self, model, twin, task, x, y):
    if x.shape[0]:
        d = per_example(model, task, x, y) - per_example(twin, task, x, y)
        rows.append((hasher.keys(x), d))
        # the window's own mean must be the row mean of these differences
        assert abs(check_error(model, task, x, y).double() - check_error(twin, task, x, y).double() - d.mean()) < 1e-5
    return add(self, model, twin, task, x, y)


def recorded_take(self, replicas):
    model, twin = take(self, replicas)
    keys = torch.cat([k for k, _ in rows])
    d = torch.cat([v for _, v in rows])
    rows.clear()
    distinct, inverse = torch.unique(keys, return_inverse=True)
    n = distinct.numel()
    per_key = torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, d)
    per_key /= torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, torch.ones_like(d))
    sd = per_key.std().item() if n > 1 else float("nan")
    windows.append({"window_diff": model - twin, "key_mean": per_key.mean().item(), "key_sd": sd, "distinct": n, "rows": d.numel()})
    return model, twin


ValidationWindow.add, ValidationWindow.take = recorded_add, recorded_take
run = run_one(RunConfig(**record["config"]), progress=False)
same = run["final"]["selection_error"] == record["final"]["selection_error"]
print(json.dumps({"task": task_name, "model": model_name, "key": key, "seed": seed, "same_run": same,
                  "handed_over_at": run["final"]["handed_over_at"], "windows": windows}))
