"""How often does ``keep_fit``'s rule act? One ``adaloss run`` with a counter on it.

Runs ``adaloss run ARGS`` in this process (pass ``--keep-fit [agree]`` among them) with the
forward engine's ``kept`` (the rule's step) wrapped to record, at every meta step, whether
the validation and training meta-gradients conflicted (⟨dL_val/dϕ, dL_train/dϕ⟩ < 0) and
the cosine between them; prints both per block of ``--block`` meta steps. The counter reads
the inner product on the host at every step, so the run is slower than the screen's; its
result file is the same run's (write it to a scratch folder). With ``--watch`` the rule is
not applied: ϕ steps on the validation meta-gradient as it is, so the counts are those along
the run without ``keep_fit`` (its result file equals that run's).

    python scripts/keepfit_conflicts.py --block 1000 -- run --task diabetes --methods adalfl \
        --recipe default --keep-fit --first-seed 2 --seeds 1 --threads 1 --quiet --out /tmp/kf
"""

from __future__ import annotations

import argparse

import adaloss.hypergrad.forward as forward
from adaloss.bench.cli import main


def dot(a, b) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)))


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=1000, help="meta steps per printed line")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="count only: ϕ steps on the validation meta-gradient as it is (the default's run)",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then adaloss's arguments")
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    seen: list[tuple[bool, float]] = []
    rule_step = forward.kept

    def counted(meta, fit, rule):
        inner = dot(meta, fit)
        norms = (dot(meta, meta) * dot(fit, fit)) ** 0.5
        seen.append((inner < 0, inner / norms if norms > 0 else 0.0))
        return meta if options.watch else rule_step(meta, fit, rule)

    forward.kept = counted
    status = main(args)
    print(f"{'meta steps':>14} {'conflicts':>10} {'mean cosine':>12}")
    for start in range(0, len(seen), options.block):
        block = seen[start : start + options.block]
        share = sum(c for c, _ in block) / len(block)
        cosine = sum(c for _, c in block) / len(block)
        print(f"{start:>6}-{start + len(block):<7} {share:>10.3f} {cosine:>12.3f}")
    raise SystemExit(status)


if __name__ == "__main__":
    run()
