"""Would handing over to plain training, judged on a check split, keep the gains and drop the harm?

Reads the runs of BENCHMARKS.md, "A check split" (``adaloss run --check-fraction 0.5``: every
run records ``curve.check_error`` on examples the meta-objective never sees) and applies the
two rules fixed there before any run, seed by seed, against the baseline run of the same seed:

- *hand-over*: at the first evaluation point where the method's check error has been above
  the baseline's at ``--points`` consecutive points (a non-finite one counts as above), the
  run becomes the baseline run (same θ_0 and batches: a hand-over's model *is* the baseline's
  from there on), so its final is the baseline's;
- *final pick*: whichever final model has the lower check error (ties: the method's);
- *both*: the hand-over, then the final pick if it never handed over (what a user who calls
  ``check`` at every evaluation and ``finish`` at the end gets, as the CNN probe does).
- *switching* (only with ``--switching``; a rule no library version has): a hand-over that
  can be taken back — both models train to the end, and the run's model is whichever the
  last ``--points`` consecutive points found strictly ahead (it starts with the method's),
  so its final is the final of the run it holds at the end.

``--ties plain`` makes a tie count against the method in every rule: the learned loss's
model is kept only while it is strictly ahead on the check split. ``--on val_error`` judges
on the validation split instead (runs without a check split, e.g. results/recipe-confirm):
the split the learned loss is fitted to, which favours it.

Prints final selection error per row (mean over non-failed seeds, paired difference from
the baseline, wins), the hand-over steps, and the pre-registered verdict of each rule. No
test error is read (a run's failure check reads only whether its test error is finite)
unless ``--bars`` asks for issue 12's bars on the five clean rows, read once per rule at
the end of a measurement (``scripts/recipe_verdict.py``'s, test error with selection beside).

    python scripts/handover_screen.py                              # the default recipe
    python scripts/handover_screen.py --method metalr_check0.5     # Meta-LR
    python scripts/handover_screen.py --on check_loss --seeds 3-9  # the task loss decides
    python scripts/handover_screen.py --ties plain                 # a tie favours plain training
    python scripts/handover_screen.py --folder results/recipe-confirm --baseline baseline \
        --method adalfl_default --on val_error                     # judged on validation
    python scripts/handover_screen.py --bars                       # test error: once, at the end
    python scripts/handover_screen.py --folder results/noise-screen --baseline baseline \
        --method adalfl_default --on val_error --switching         # a hand-over taken back
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from recipe_mechanism import ROWS as CLEAN_ROWS
from recipe_verdict import report

from adaloss.bench.failures import failure
from adaloss.bench.results import final_error, load_results

ROWS = [
    ("california-noise0.2", "adaloss_mlp"),  # results/noise-screen's two rows
    ("digits-noise0.4", "adaloss_mlp"),
    ("diabetes", "adaloss_mlp"),
    ("diabetes-noise0.2", "adaloss_mlp"),
    ("crime", "adaloss_mlp"),
    ("crime-noise0.2", "adaloss_mlp"),
    ("digits", "adaloss_logistic"),
    ("digits-noise0.4", "adaloss_logistic"),
    ("california", "adaloss_mlp"),
    ("digits", "adaloss_mlp"),
    ("digits-noise0.2", "adaloss_mlp"),
]


def behind(mine: float, theirs: float, ties: str = "model") -> bool:
    """Whether the method's check value counts against it: above the baseline's, NaN (a
    diverged run) or, with ``ties="plain"``, equal to it (the learned loss must be ahead)."""
    return not mine < theirs if ties == "plain" else not mine <= theirs


def handover_step(
    own: dict, base: dict, points: int, on: str = "check_error", ties: str = "model"
) -> int | None:
    """The step at which ``own`` hands over to ``base``, or None if it never does.

    A run that stopped early (diverged) counts as above at every point it did not reach.
    Step 0 is not a check (both models are θ_0 there; the library first checks after a step)."""
    steps, theirs = base["curve"]["step"], base["curve"][on]
    mine = own["curve"][on]
    if steps[: len(own["curve"]["step"])] != own["curve"]["step"]:
        raise ValueError("the two runs were evaluated at different steps")
    mine = mine + [math.nan] * (len(steps) - len(mine))
    above = 0
    for step, a, b in zip(steps, mine, theirs, strict=True):
        if step == 0:
            continue
        above = above + 1 if behind(a, b, ties) else 0
        if above >= points:
            return step
    return None


def switched(own: dict, base: dict, points: int, on: str = "check_error") -> tuple[dict, int]:
    """The run *switching* holds at the end, and how many times it switched.

    A switch needs the other run strictly ahead at ``points`` consecutive points; a
    non-finite value (a diverged run) is never ahead."""
    steps, theirs = base["curve"]["step"], base["curve"][on]
    mine = own["curve"][on] + [math.nan] * (len(steps) - len(own["curve"][on]))
    holding_own, ahead, switches = True, 0, 0
    for step, a, b in zip(steps, mine, theirs, strict=True):
        if step == 0:
            continue
        other_ahead = behind(a, b) if holding_own else a < b  # NaN is never strictly ahead
        ahead = ahead + 1 if other_ahead else 0
        if ahead >= points:
            holding_own, ahead, switches = not holding_own, 0, switches + 1
    return (own if holding_own else base), switches


def picked(own: dict, base: dict, on: str = "check_error", ties: str = "model") -> dict:
    """The final model with the lower check error (ties: the method's, or with
    ``ties="plain"`` the baseline's)."""
    return base if behind(own["curve"][on][-1], base["curve"][on][-1], ties) else own


def error(record: dict, split: str = "selection") -> float:
    """Final error on ``split``, NaN for a failed run."""
    return math.nan if failure(record) else final_error(record, split)


def summary(values: dict[int, float], baseline: dict[int, float]) -> tuple[str, float | None]:
    """The table cell and the mean paired difference from the baseline (None: no pair)."""
    finite = [v for v in values.values() if math.isfinite(v)]
    failed = len(values) - len(finite)
    text = f"{statistics.fmean(finite):.4f}" if finite else "all failed"
    diffs = [values[s] - baseline[s] for s in values if math.isfinite(values[s] - baseline[s])]
    if failed:
        text += f", {failed} failed"
    if not diffs:
        return text, None
    diff = statistics.fmean(diffs)
    return text + f" {diff:+.4f}, {sum(d < 0 for d in diffs)}/{len(diffs)}", diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="results/check-screen")
    parser.add_argument("--method", default="adalfl_default_check0.5")
    parser.add_argument("--baseline", default="baseline_check0.5")
    parser.add_argument("--points", type=int, default=5, help="consecutive evaluation points")
    parser.add_argument(
        "--on",
        default="check_error",
        choices=["check_error", "check_loss", "val_error"],
        help="compare the check split's error (pre-registered) or task loss, or validation error",
    )
    parser.add_argument(
        "--ties",
        default="model",
        choices=["model", "plain"],
        help="who a tie favours: the method (pre-registered in session 15) or the baseline",
    )
    parser.add_argument("--seeds", default=None, help="only these seeds, e.g. 3-9")
    parser.add_argument("--root", default=".", help="repository root")
    parser.add_argument(
        "--bars", action="store_true", help="also issue 12's bars on the clean rows (reads test)"
    )
    parser.add_argument(
        "--switching", action="store_true", help="also the hand-over that can be taken back"
    )
    args = parser.parse_args()
    wanted = None
    if args.seeds:
        first, _, last = args.seeds.partition("-")
        wanted = set(range(int(first), int(last or first) + 1))
    rules = ["hand-over", "final pick", "both"] + (["switching"] if args.switching else [])
    print(f"| row | baseline | method | {' | '.join(rules)} | hand-over at (by seed) |")
    print("|---|--:|--:|" + "--:|" * len(rules) + "--:|")
    verdict: dict[str, list] = {rule: [] for rule in ["method", *rules]}  # the method alone too
    beats = dict.fromkeys(verdict, 0)
    bars: dict[str, list] = {rule: [] for rule in verdict}
    for task, model in ROWS:
        row = Path(args.root) / args.folder / task / model
        if not (row / args.method).is_dir() or not (row / args.baseline).is_dir():
            continue
        own = {int(r["seed"]): r for r in load_results(row / args.method)}
        base = {int(r["seed"]): r for r in load_results(row / args.baseline)}
        seeds = sorted(set(own) & set(base) & (wanted or set(own)))
        if not seeds:
            continue
        steps = {s: handover_step(own[s], base[s], args.points, args.on, args.ties) for s in seeds}
        pick = {s: picked(own[s], base[s], args.on, args.ties) for s in seeds}
        kept = {  # the final model each rule keeps, by seed
            "method": own,
            "hand-over": {s: base[s] if steps[s] is not None else own[s] for s in seeds},
            "final pick": pick,
            "both": {s: base[s] if steps[s] is not None else pick[s] for s in seeds},
        }
        if args.switching:
            switching = {s: switched(own[s], base[s], args.points, args.on) for s in seeds}
            kept["switching"] = {s: held for s, (held, _) in switching.items()}
        columns = {rule: {s: error(records[s]) for s in seeds} for rule, records in kept.items()}
        reference = {s: error(base[s]) for s in seeds}
        if args.bars and (task, model) in CLEAN_ROWS:
            for rule, records in kept.items():
                split_errors = {
                    split: (
                        {s: error(records[s], split) for s in seeds},
                        {s: error(base[s], split) for s in seeds},
                    )
                    for split in ("selection", "test")
                }
                bars[rule].append((task, model, split_errors))
        spread = [v for v in reference.values() if math.isfinite(v)]
        std = statistics.stdev(spread) if len(spread) > 1 else math.nan
        cells = {name: summary(values, reference) for name, values in columns.items()}
        at = " / ".join("—" if steps[s] is None else f"{steps[s]:,}" for s in seeds)
        if args.switching:  # and how often switching switched, by seed
            at += "; switches " + " ".join(str(switching[s][1]) for s in seeds)
        print(
            f"| {task} {model} | {statistics.fmean(spread):.4f} | {cells['method'][0]} | "
            f"{' | '.join(cells[rule][0] for rule in rules)} | {at} |"
        )
        gain = cells["method"][1]
        for rule in verdict:
            diff = cells[rule][1]
            beats[rule] += diff is not None and diff < 0
            failed = any(not math.isfinite(v) for v in columns[rule].values())
            problems = []
            if failed:
                problems.append("a kept final failed")
            if diff is not None and diff > std:
                problems.append(f"clearly worse ({diff:+.4f} > std {std:.4f})")
            if gain is not None and gain < 0 and (diff is None or diff > gain / 2):
                problems.append(f"keeps less than half of {gain:+.4f}")
            verdict[rule] += [f"{task} {model}: {p}" for p in problems]
    for rule, problems in verdict.items():
        outcome = "passes" if not problems else "fails: " + "; ".join(problems)
        print(f"\n{rule}: {outcome} (lower mean than the baseline on {beats[rule]} rows)")
    for rule, rows in bars.items() if args.bars else ():
        print(f"\n### {rule}, issue 12's bars (test error; selection beside it)\n")
        label = f"{rule} ({args.method}, on {args.on}, ties: {args.ties}) vs {args.baseline}"
        print(report(rows, label))


if __name__ == "__main__":
    main()
