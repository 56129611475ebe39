"""Does the learned loss pull less on the examples whose training targets were corrupted?
(issue 12)

On rows with corrupted training targets (``adaloss run --label-noise``) the learned loss has
a known way to beat the task loss: give the corrupted examples less of the training force.
This measures it directly, at a run's final θ and ϕ (``adaloss run --save-states``): over
the whole training split, each example's gradient with respect to the model's outputs under
the learned loss, g_M, and under the task loss, g_T, and

- the share of the total force ‖g‖ that falls on corrupted examples, under each loss;
- the median per-example weight w = ⟨g_M, g_T⟩ / ‖g_T‖², clean and corrupted apart, over
  the median clean weight (1: the learned loss weighs both groups as the task loss does).

    python scripts/corrupted_pull.py --folder results/noise-states
    python scripts/corrupted_pull.py --folder results/noise-states --key adalfl_default_monotone

The guard trains on s·M + c·L_T per batch (s, c ≥ 0); this looks at M alone, the part
the meta-gradient shapes. A row's corrupted examples are those whose target the corruption
changed (a redrawn class can equal the old one).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from adaloss.bench.batching import full_batch
from adaloss.bench.config import RunConfig
from adaloss.bench.datasets import load_dataset
from adaloss.bench.results import load_results, states_path
from adaloss.bench.runner import prepare_run
from adaloss.bench.tables import render_table


def pull_by_group(g_learned: torch.Tensor, g_task: torch.Tensor, corrupted: torch.Tensor):
    """(task-loss share of force on corrupted, learned-loss share, relative weight of the
    corrupted examples) from per-example output gradients (N, C) and a mask (N,)."""
    norm_m, norm_t = g_learned.norm(dim=1), g_task.norm(dim=1)
    share_t = float(norm_t[corrupted].sum() / norm_t.sum())
    share_m = float(norm_m[corrupted].sum() / norm_m.sum())
    kept = norm_t > 0  # an example the task loss does not pull has no weight
    weight = (g_learned * g_task).sum(dim=1)[kept] / norm_t[kept] ** 2
    mask = corrupted[kept]
    relative = float(weight[mask].median() / weight[~mask].median())
    return share_t, share_m, relative


def per_example_gradients(run, states: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """g_M and g_T (N, C) on the whole training split at the saved θ and ϕ."""
    run.model.load_state_dict(states["model"])
    run.opt.loss.load_state_dict(states["loss"])
    x, y = full_batch(run.data.train)
    with torch.no_grad():
        out = run.model.eval()(x)
    out.requires_grad_(True)
    n = out.shape[0]  # every loss is a batch mean: n × its gradient is per example
    learned = run.opt.loss(*run.task.learned_loss_inputs(out, y))
    g_learned = torch.autograd.grad(learned, out)[0] * n
    g_task = torch.autograd.grad(run.task.loss(out, y), out)[0] * n
    return g_learned.reshape(n, -1), g_task.reshape(n, -1)


def corrupted_mask(config: RunConfig, run) -> torch.Tensor:
    clean = load_dataset(config.task, config.data_dir, seed=config.seed).train.targets
    noisy = run.data.train.targets
    differs = clean != noisy
    return differs.reshape(len(noisy), -1).any(dim=1)


def pull_rows(folder: Path, key: str) -> tuple[list, list]:
    header = ["task", "model", "seeds", "corrupted", "force on corrupted: task loss",
              "learned loss", "weight corrupted / clean"]  # fmt: skip
    rows = []
    for path in sorted(folder.glob(f"*/*/{key}")):
        measured = []
        for record in load_results(path):
            states_file = states_path(Path(record["_path"]))
            if not states_file.exists():
                continue
            config = RunConfig(**record["config"])
            run = prepare_run(config)
            mask = corrupted_mask(config, run)
            g_learned, g_task = per_example_gradients(run, torch.load(states_file))
            measured.append((float(mask.float().mean()), *pull_by_group(g_learned, g_task, mask)))
        if measured:
            medians = [statistics.median(col) for col in zip(*measured, strict=True)]
            rows.append([path.parts[-3], path.parts[-2], str(len(measured)),
                         *[f"{m:.3f}" for m in medians]])  # fmt: skip
    return header, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/noise-states")
    parser.add_argument("--key", default="adalfl_default", help="method key (result folder)")
    args = parser.parse_args()
    header, rows = pull_rows(Path(args.folder), args.key)
    print("\n".join(render_table(header, rows, markdown=True, n_left=2)))


if __name__ == "__main__":
    main()
