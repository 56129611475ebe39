"""Session 29's screen of ``step_length_meta_lr`` (BENCHMARKS.md, "The step length's own meta
rate"), read by the rules written before its runs. Selection error at step 2,000 only.

    python results/step-rate-screen/screen.py

Candidates and the baseline: this folder's 2,000-step runs, seeds 0-2. Today's default: its
ten-seed files in results/default-confirm at step 2,000 (``curve.selection_error``; one such
point was checked equal to a 2,000-step run). The baseline std: the ten baseline seeds of
results/default-confirm at step 2,000, floored at one selection example (1/144) on digits.
"""

import json
import statistics
from pathlib import Path

from adaloss.bench.failures import failure

HERE = Path("results/step-rate-screen")
CONFIRM = Path("results/default-confirm")
ROWS = {  # row: (folder, today's default's key, the candidates' key without the rate)
    "crime": ("crime/adaloss_mlp", "adalfl_default_monotone_share0.5",
              "adalfl_default_monotone_share0.5_learnlr"),
    "Diabetes": ("diabetes/adaloss_mlp", "adalfl_default_monotone_share0.5",
                 "adalfl_default_monotone_share0.5_learnlr"),
    "California": ("california/adaloss_mlp", "adalfl_default_monotone_share0.5",
                   "adalfl_default_monotone_share0.5_learnlr"),
    "digits + logistic": ("digits/adaloss_logistic", "adalfl_default_learnlr",
                          "adalfl_default_learnlr"),
    "digits + MLP": ("digits/adaloss_mlp", "adalfl_default_learnlr", "adalfl_default_learnlr"),
}  # fmt: skip
SEEDS = (0, 1, 2)
RATES = ("0.1", "0.01")


def at_2000(path: Path) -> float:
    run = json.loads(path.read_text())
    return run["curve"]["selection_error"][run["curve"]["step"].index(2000)]


def main() -> None:
    verdicts = {rate: {"gate": True, "beats": 0} for rate in RATES}
    heads = [f"rate {r}: − baseline (wins), − default, failed, r at the end" for r in RATES]
    print(
        "| row | baseline std at 2,000 | today's default − baseline | " + " | ".join(heads) + " |"
    )
    print("|---|--:|--:|" + "---|" * len(RATES))
    for row, (folder, default_key, key) in ROWS.items():
        tens = [at_2000(CONFIRM / folder / "baseline" / f"seed{s}.json") for s in range(10)]
        std = statistics.stdev(tens)
        if row.startswith("digits"):
            std = max(std, 1 / 144)
        base = [json.loads((HERE / folder / "baseline" / f"seed{s}.json").read_text())
                ["final"]["selection_error"] for s in SEEDS]  # fmt: skip
        default = [at_2000(CONFIRM / folder / default_key / f"seed{s}.json") for s in SEEDS]
        cells = []
        for rate in RATES:
            runs = [json.loads((HERE / folder / f"{key}_slr{rate}" / f"seed{s}.json").read_text())
                    for s in SEEDS]  # fmt: skip
            ends = [r["final"]["selection_error"] for r in runs]
            vs_base = statistics.mean(e - b for e, b in zip(ends, base, strict=True))
            wins = sum(e < b - 1e-6 for e, b in zip(ends, base, strict=True))
            vs_default = statistics.mean(e - d for e, d in zip(ends, default, strict=True))
            fails = sum(bool(failure(r)) for r in runs)  # the table's rule
            factors = [round(r["curve"]["step_factor"][-1], 2) for r in runs]
            ok = fails == 0 and vs_base <= std and vs_default <= std
            verdicts[rate]["gate"] &= ok
            verdicts[rate]["beats"] += vs_base < 0 and wins >= 2
            cells.append(f"{vs_base:+.4f} ({wins}/3), {vs_default:+.4f}, {fails}, {factors}"
                         + ("" if ok else " **gate fails**"))  # fmt: skip
        d_base = statistics.mean(d - b for d, b in zip(default, base, strict=True))
        print(f"| {row} | {std:.4f} | {d_base:+.4f} | " + " | ".join(cells) + " |")
    for rate, v in verdicts.items():
        print(
            f"rate {rate}: gate {'passes' if v['gate'] else 'fails'}; beats the baseline on "
            f"{v['beats']} of 5 rows"
        )
    passing = [r for r in RATES if verdicts[r]["gate"]]
    if not passing:
        print("pick: none (no candidate passes the gate)")
        return
    best = max(verdicts[r]["beats"] for r in passing)
    pick = "0.01" if "0.01" in passing and verdicts["0.01"]["beats"] == best else passing[0]
    print(f"pick: {pick}")


if __name__ == "__main__":
    main()
