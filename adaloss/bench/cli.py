"""The ``adaloss`` command: scripted benchmark runs, tables, figures and speed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from adaloss.bench.extras import install_hint
from adaloss.bench.names import base_method
from adaloss.bench.results import SPLITS, load_results


def _run(args: argparse.Namespace) -> int:
    from adaloss.bench.config import configs_from_args
    from adaloss.bench.runner import run_configs

    if args.threads:
        torch.set_num_threads(args.threads)
    run_configs(
        configs_from_args(args), args.out, progress=not args.quiet, save_states=args.save_states
    )
    return 0


def _table(args: argparse.Namespace) -> int:
    from adaloss.bench.report import format_table

    results = load_results(args.directory)
    print(
        format_table(
            results,
            markdown=args.markdown,
            paired=args.paired,
            split=args.split,
            per_seed=args.per_seed,
        )
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from adaloss.bench.plots import plot_learning_curves, plot_loss_evolution

    results = load_results(args.directory)
    out = args.out or args.directory
    paths = plot_learning_curves(results, out, show_train=args.train)
    methods = (
        [args.method]
        if args.method
        else sorted({r["method"] for r in results if base_method(r["method"]) == "adalfl"})
    )
    for method in methods:
        paths += plot_loss_evolution(results, out, method=method, seed=args.seed)
    for path in paths:
        print(path)
    return 0


def _speed(args: argparse.Namespace) -> int:
    from adaloss.bench.speed import format_report, run_speed

    try:
        results = run_speed(args)
    except ValueError as err:
        print(f"adaloss speed: error: {err}", file=sys.stderr)
        return 2
    print(format_report(results, markdown=args.markdown))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adaloss", description="AdaLFL benchmark runs, tables, figures and speed."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    from adaloss.bench.config import add_run_arguments
    from adaloss.bench.speed import add_speed_arguments

    run = commands.add_parser("run", help="train methods on a task over seeds (resumable)")
    add_run_arguments(run)
    run.set_defaults(handler=_run)

    table = commands.add_parser("table", help="Table-1-style mean ± std over seeds")
    table.add_argument("directory")
    table.add_argument("--markdown", action="store_true", help="Markdown instead of text")
    table.add_argument("--paired", action="store_true", help="add per-seed comparison to baseline")
    table.add_argument("--per-seed", action="store_true", help="add each row's values seed by seed")
    table.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="which final error to tabulate (choose variants on val, never on test)",
    )
    table.set_defaults(handler=_table)

    plot = commands.add_parser("plot", help="learning curves and learned-loss evolution (PNG)")
    plot.add_argument("directory")
    plot.add_argument("--out", help="folder for the PNG files (default: DIRECTORY)")
    plot.add_argument(
        "--method", default=None, help="method whose learned loss to draw (default: every AdaLFL)"
    )
    plot.add_argument("--seed", type=int, default=None, help="seed to draw (default: lowest)")
    plot.add_argument("--train", action="store_true", help="also draw training error (dashed)")
    plot.set_defaults(handler=_plot)

    speed = commands.add_parser("speed", help="time and memory per step: plain vs meta engines")
    add_speed_arguments(speed)
    speed.set_defaults(handler=_speed)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except ImportError as err:  # an optional dependency of the command is not installed
        hint = install_hint(err)
        if hint is None:
            raise
        print(f"adaloss: {err.name} is not installed; to fix: {hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
