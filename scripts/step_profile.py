"""Where a step of ``adaloss speed``'s methods spends its time, part by part (cProfile).

The hand-over's twin adds a plain step and, with ``check_every``, two eval-mode forward
passes on the validation batch; its rollback copies θ, the buffers and the optimizer
state before each step. This runs one method for a number of steps under cProfile and
prints the cumulative time of those parts as a share of the step, so that a change to
one of them can be weighed before it is made:

    python scripts/step_profile.py --model mlp --method forward+check --steps 200

Shares, not seconds, are what to compare: cProfile slows Python-heavy parts more than
the kernels, so the shares of copies and bookkeeping are upper bounds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

import torch

from adaloss.bench.speed.methods import MODELS, Runner, make_batches, parse_method

# (what it is, file suffix, function name): cumulative times read from the profile.
PARTS = [
    ("whole step", "adaloss/online.py", "step"),
    ("learned-loss step (meta step and θ update)", "adaloss/online.py", "_step"),
    ("twin: everything (its step and the window)", "adaloss/handover.py", "step"),
    ("twin: copies for its rollback (θ, buffers, momentum)", "adaloss/handover.py", "_snapshot"),
    ("window: both models' eval forward on x_val", "adaloss/handover.py", "check_error"),
]


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    return sum(
        row[3]
        for (path, _, func), row in stats.stats.items()
        if path.endswith(suffix) and func == name
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", choices=sorted(MODELS))
    parser.add_argument("--method", default="forward+check")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec, device = MODELS[args.model], torch.device("cpu")
    batches = make_batches(spec, spec.batch, 8, 0, device)
    runner = Runner(spec, parse_method(args.method), batches, device, 0.01, 0.9, 0)
    for _ in range(args.warmup):
        runner.step()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        runner.step()
    profile.disable()
    stats = pstats.Stats(profile)
    whole = cumulative(stats, *PARTS[0][1:])
    print(f"{spec.label}, {args.method}, {args.steps} steps under cProfile: {whole:.2f} s")
    for label, suffix, name in PARTS:
        seconds = cumulative(stats, suffix, name)
        print(f"  {label:<54} {seconds:7.2f} s  {100 * seconds / whole:5.1f} %")
    params = sum(p.numel() for p in runner.model.parameters())
    print(f"  (θ: {params:,} values; the rollback clones θ, buffers and momentum per step)")


if __name__ == "__main__":
    main()
