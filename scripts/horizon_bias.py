"""Which way does a meta-objective K steps ahead push the step size? (issue 12)

The default recipe's measured effect is a longer step (BENCHMARKS.md: the guard binds on
most steps; a baseline at 2× lr matches it). Its meta-objective is L_T one step ahead, and
a one-step objective is known to be biased in the step size it asks for (short-horizon
bias, Wu et al. 2018). This probe measures that bias directly, without a learned loss:
along a plain SGD run of a benchmark row it stops at a few steps t, takes the next K_max
training batches, and from the same θ_t trains K steps on those same batches at lr·F and
at lr/F; the central difference

    D_K = [L(θ_{t+K}; lr·F) − L(θ_{t+K}; lr/F)] / (2 ln F)

is the derivative of the task loss K steps ahead with respect to log lr. D_K < 0: a longer
step lowers the loss K steps ahead, so a meta-objective with horizon K asks for a longer
step (a steeper learned loss); D_K > 0: a shorter one. Printed for the meta-validation
split (what the meta-objective sees) and the selection split (held out), per K, with the
sign's count over the stops and seeds. The main run is unchanged by the probes: it goes on
with the same batches it would have had.

    python scripts/horizon_bias.py --task diabetes --seeds 0 1 2
    python scripts/horizon_bias.py --task digits --model adaloss_logistic --horizons 1,10,100
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math

import torch

from adaloss.bench.config import PAPER_MODELS, RunConfig, paper_lr
from adaloss.bench.runner import evaluate_error, prepare_run
from adaloss.bench.step import training_step


def probe(run, batches, lr, factor, horizons):
    """{(split, K): D_K} from the run's current θ over ``batches``; the run is left as it was."""
    model, base = run.model, run.base
    saved_model = copy.deepcopy(model.state_dict())
    saved_base = copy.deepcopy(base.state_dict())
    losses = {}
    for sign, f in ((+1, factor), (-1, 1 / factor)):
        for group in base.param_groups:
            group["lr"] = lr * f
        for k, batch in enumerate(batches, start=1):
            if not training_step(model, run.task, base, None, batch):
                raise RuntimeError(f"non-finite loss at probe step {k} (lr {lr * f:g})")
            if k in horizons:
                for split in ("val", "selection"):
                    ds = getattr(run.data, split)
                    # L_T, the meta-objective's loss, over the whole split
                    value = evaluate_error(model, run.task, ds, run.config.device,
                                           metric=run.task.loss)  # fmt: skip
                    losses[split, k] = losses.get((split, k), 0.0) + sign * value
        model.load_state_dict(saved_model)
        base.load_state_dict(saved_base)
    return {key: value / (2 * math.log(factor)) for key, value in losses.items()}


def run_seed(args, seed: int) -> list[tuple[int, dict]]:
    config = RunConfig(
        task=args.task,
        model=args.model,
        method="baseline",
        seed=seed,
        steps=max(args.at),
        lr=args.lr if args.lr is not None else paper_lr(args.task),
        data_dir=args.data_dir,
    )
    run = prepare_run(config)
    horizons = sorted(args.horizons)
    stops, rows, step = sorted(args.at), [], 0
    for stop in stops:
        while step < stop:
            run.step()
            step += 1
        ahead = [(*next(run.train), None, None) for _ in range(horizons[-1])]
        rows.append((stop, probe(run, ahead, config.lr, args.factor, set(horizons))))
        # The main run continues on the batches the probe borrowed, in their order.
        run.train = itertools.chain([b[:2] for b in ahead], run.train)
        print(f"  seed {seed} step {stop}: " + "  ".join(
            f"K={k} val {rows[-1][1]['val', k]:+.2e} sel {rows[-1][1]['selection', k]:+.2e}"
            for k in horizons
        ), flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--model", default=None, help="default: the paper's first for the task")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--at", type=lambda s: [int(v) for v in s.split(",")],
                        default=[0, 1000, 2500, 5000, 7500], help="steps to probe at")  # fmt: skip
    parser.add_argument("--horizons", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 10, 100, 1000], help="K values")  # fmt: skip
    parser.add_argument("--factor", type=float, default=1.25, help="F: lr·F against lr/F")
    parser.add_argument("--lr", type=float, default=None, help="default: the paper's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.model = args.model or PAPER_MODELS[args.task][0]
    torch.set_num_threads(args.threads)

    print(f"{args.task} / {args.model}: D_K = dL(θ_t+K)/d log lr (F = {args.factor:g}); "
          "< 0: a longer step helps K steps ahead")  # fmt: skip
    table = [row for seed in args.seeds for row in run_seed(args, seed)]
    for split in ("val", "selection"):
        counts = []
        for k in sorted(args.horizons):
            longer = sum(values[split, k] < 0 for _, values in table)
            counts.append(f"K={k}: {longer}/{len(table)}")
        print(f"{split:>9}: stops where a longer step helps  " + "   ".join(counts))


if __name__ == "__main__":
    main()
