"""Each hand-over window of one default run on a regression row: the learned loss's model and
the plain twin on the validation examples kept for the checks (check_share=0.5).

    PYTHONPATH=. python results/diabetes-seed4-windows/windows.py diabetes 4

Runs the default-confirm run (`adalfl_default_monotone_share0.5`, the same config) through
the runner, recording every ``HandoverWatch.observe`` call; prints one line per window with
the run's selection error and the baseline's at that step, from the committed files.
"""

import json
import sys

import torch

from adaloss.bench.config import RunConfig
from adaloss.bench.runner import run_one
from adaloss.handover import HandoverWatch

torch.set_num_threads(1)  # as the committed runs (--threads 1): the same run, bit for bit
task, seed = sys.argv[1], int(sys.argv[2])
folder = f"results/default-confirm/{task}/adaloss_mlp"
record = json.load(open(f"{folder}/adalfl_default_monotone_share0.5/seed{seed}.json"))
baseline = json.load(open(f"{folder}/baseline/seed{seed}.json"))
windows = []
observe = HandoverWatch.observe


def recorded(self, model_error, twin_error):
    windows.append((model_error, twin_error))
    return observe(self, model_error, twin_error)


HandoverWatch.observe = recorded
run = run_one(RunConfig(**record["config"]), progress=False)
assert run["final"]["selection_error"] == record["final"]["selection_error"], "not the same run"
steps = record["curve"]["step"]
print("window end | check half: model − twin | selection: run − baseline")
for i, (model, twin) in enumerate(windows):
    step = 200 * (i + 1)
    j = steps.index(step) if step in steps else None
    sel = "" if j is None else (
        f"{record['curve']['selection_error'][j] - baseline['curve']['selection_error'][j]:+.5f}"
    )
    print(f"{step:>6} | {model - twin:+.5f} | {sel}")
