"""Tables from synthetic benchmark result files: loading, failure rules, summaries, report."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from adaloss.bench.config import RunConfig
from adaloss.bench.failures import failure, is_collapsed, is_diverged
from adaloss.bench.names import method_label, method_order
from adaloss.bench.report import format_table
from adaloss.bench.results import load_results
from adaloss.bench.summary import paired_comparison, summarize

SEEDS = (0, 1, 2)
METHODS = ("baseline", "ml3", "adalfl")
# (task, model, metric) -> method -> per-seed final test error (None = diverged).
ERRORS = {
    ("diabetes", "mlp", "mse"): {
        "baseline": [0.0432, 0.0445, 0.0421],
        "ml3": [0.0430, 0.0418, 0.0441],
        "adalfl": [0.0420, 0.0409, 0.0418],  # best mean; beats baseline on every seed
    },
    ("mnist", "lenet5", "error_rate"): {
        "baseline": [0.0125, 0.0118, 0.0131],
        "ml3": [0.0094, 0.0101, 0.0090],  # best mean
        "adalfl": [0.0091, 0.0130, None],  # seed 2 diverged; wins seed 0 only
    },
}
LABELS = {"baseline": "Baseline", "ml3": "ML3 (Offline)", "adalfl": "AdaLFL (Online)"}


def _write_run(root: Path, task, model, metric, method, seed, err, loss_grid=None) -> None:
    steps = [0, 50, 100, 150]
    diverged = err is None
    if diverged:
        test_curve = [0.5, 0.2, float("inf"), float("nan")]
        final_err = float("nan")
    else:
        test_curve = [0.5, 0.1, 2 * err, err]
        final_err = err
    run = {
        "task": task,
        "model": model,
        "method": method,
        "seed": seed,
        "label": LABELS[method],
        "metric": metric,
        "config": {"steps": 150},
        "versions": {},
        "wall_time_s": 1.0,
        "final": {
            "test_error": final_err,
            "val_error": final_err / 2,  # distinct from the test error, to tell the splits apart
            "train_error": 0.01,
            "diverged": diverged,
        },
        "curve": {
            "step": steps,
            "train_error": [0.4, 0.05, 0.02, 0.01 if not diverged else None],
            "test_error": test_curve,
        },
        "loss_grid": loss_grid,
    }
    path = root / task / model / method / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))  # json writes NaN/Infinity, as a runner would


def regression_grid() -> dict:
    x = np.linspace(-0.5, 0.5, 21)
    steps = [0, 50, 100, 150]
    return {
        "x_label": "Error",
        "x": x.tolist(),
        "steps": steps,
        "curves": {"loss": [((1 + s / 100) * x**2).tolist() for s in steps]},
    }


def classification_grid() -> dict:
    p = np.linspace(0.0, 1.0, 21)
    steps = [0, 50, 100, 150]
    return {
        "x_label": "Predicted probability",
        "x": p.tolist(),
        "steps": steps,
        "curves": {
            "y = 1": [(-np.log(p + 1e-3) * (1 + s / 100)).tolist() for s in steps],
            "y = 0": [(-np.log(1 - p + 1e-3) * (1 + s / 100)).tolist() for s in steps]
            + [[None] * len(p)],  # an unusable extra snapshot must be ignored
        },
    }


def make_results(root: Path) -> Path:
    """2 tasks × 3 methods × 3 seeds, one diverged run, one grid of each kind."""
    for (task, model, metric), by_method in ERRORS.items():
        for method, errs in by_method.items():
            for seed, err in zip(SEEDS, errs, strict=True):
                grid = None
                if method == "adalfl" and seed == 0:
                    grid = regression_grid() if metric == "mse" else classification_grid()
                _write_run(root, task, model, metric, method, seed, err, grid)
    return root


@pytest.fixture
def results(tmp_path):
    return load_results(make_results(tmp_path / "runs"))


def _finite(errs):
    return [e for e in errs if e is not None]


def _table_blocks(text: str) -> list[list[str]]:
    """Consecutive runs of table lines (Markdown: lines starting with '|')."""
    blocks, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_load_results_reads_all_and_skips_bad_files(tmp_path):
    root = make_results(tmp_path / "runs")
    (root / "broken.json").write_text("{not json")
    (root / "list.json").write_text("[1, 2]")
    with pytest.warns(UserWarning, match="skipping"):
        runs = load_results(root)
    assert len(runs) == 18
    assert {r["method"] for r in runs} == set(METHODS)
    assert sum(is_diverged(r) for r in runs) == 1
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")


def test_summarize_matches_independent_stats(results):
    summaries = summarize(results)
    assert len(summaries) == 6
    for s in summaries:
        errs = ERRORS[(s.task, s.model, s.metric)][s.method]
        fin = _finite(errs)
        assert s.n_runs == 3
        assert s.n == len(fin)
        assert s.n_diverged == 3 - len(fin)
        assert s.mean == pytest.approx(statistics.mean(fin), rel=1e-12)
        assert s.std == pytest.approx(statistics.stdev(fin), rel=1e-12)
        assert s.label == LABELS[s.method]
    # Table order: paper task order, then paper method order.
    assert [(s.task, s.method) for s in summaries] == [
        (t, m) for t in ("diabetes", "mnist") for m in METHODS
    ]


def test_validation_split_summarizes_the_validation_error(results):
    by_test = {(s.task, s.method): s for s in summarize(results)}
    for s in summarize(results, split="val"):
        ref = by_test[(s.task, s.method)]
        assert s.n == ref.n and s.n_diverged == ref.n_diverged  # divergence is per run
        assert s.mean == pytest.approx(ref.mean / 2, rel=1e-12)
    text = format_table(results, markdown=True, paired=True, split="val")
    assert text.startswith("Final validation error") and "lower validation error" in text
    with pytest.raises(ValueError, match="split must be one of"):
        summarize(results, split="holdout")


def test_single_seed_has_nan_std_and_prints_mean_only(results):
    one = [r for r in results if r["seed"] == 0]
    s = summarize(one)[0]
    assert s.n == 1 and math.isnan(s.std)
    text = format_table(one)
    assert f"{s.mean:.4f} (n=1)" in text
    assert "nan" not in text.lower()


def test_text_table_numbers_best_mark_and_alignment(results):
    text = format_table(results)
    lines = text.splitlines()
    sep_i = next(i for i, line in enumerate(lines) if set(line) <= {"-", " "} and line)
    header, sep, rows = lines[sep_i - 1], lines[sep_i], lines[sep_i + 1 :]
    assert len(rows) == 2
    # Columns align: every cell starts where its dashes start, after two spaces.
    starts = [m.start() for m in re.finditer(r"-+", sep)]
    assert len(starts) == 3 + len(METHODS)
    for line in [header, *rows]:
        for st in starts[1:]:
            assert line[st - 2 : st] == "  " and line[st] != " ", line
    expected_best = {"diabetes": "adalfl", "mnist": "ml3"}
    for row in rows:
        cells = [row[a:b].strip() for a, b in zip(starts, starts[1:] + [None], strict=True)]
        task, model = cells[0], cells[1]
        metric = next(k[2] for k in ERRORS if k[0] == task)
        assert cells[2] == {"mse": "MSE", "error_rate": "error rate"}[metric]
        starred = [m for m, c in zip(METHODS, cells[3:], strict=True) if c.endswith("*")]
        assert starred == [expected_best[task]]
        for method, cell in zip(METHODS, cells[3:], strict=True):
            fin = _finite(ERRORS[(task, model, metric)][method])
            want = f"{statistics.mean(fin):.4f} ± {statistics.stdev(fin):.4f} (n={len(fin)}"
            assert cell.startswith(want), (cell, want)
            if len(fin) < 3:
                assert "1 diverged" in cell


def test_markdown_table_is_valid_and_bolds_best(results):
    text = format_table(results, markdown=True)
    blocks = _table_blocks(text)
    assert len(blocks) == 1
    table = blocks[0]
    assert len({line.count("|") for line in table}) == 1
    assert re.fullmatch(r"\|(:?-+:?\|)+", table[1])
    header = _md_cells(table[0])
    assert header[:3] == ["Task", "Model", "Metric"]
    assert header[3:] == [LABELS[m] for m in METHODS]
    bold = {}
    for line in table[2:]:
        cells = _md_cells(line)
        bold[cells[0]] = [m for m, c in zip(METHODS, cells[3:], strict=True) if c.startswith("**")]
    assert bold == {"diabetes": ["adalfl"], "mnist": ["ml3"]}


def _expected_paired(task_key, method):
    m, b = ERRORS[task_key][method], ERRORS[task_key]["baseline"]
    diffs = [x - y for x, y in zip(m, b, strict=True) if x is not None and y is not None]
    wins = sum((x is not None and (y is None or x < y)) for x, y in zip(m, b, strict=True))
    return diffs, wins


def test_paired_comparison_counts_wins(results):
    for method in ("ml3", "adalfl"):
        comps = paired_comparison(results, method)
        assert set(comps) == {("diabetes", "mlp"), ("mnist", "lenet5")}
        for key, p in comps.items():
            task_key = next(k for k in ERRORS if k[:2] == key)
            diffs, wins = _expected_paired(task_key, method)
            assert p.n == 3 and p.n_finite == len(diffs)
            assert p.wins == wins
            assert p.diff_mean == pytest.approx(statistics.mean(diffs), rel=1e-9)
            assert p.diff_std == pytest.approx(statistics.stdev(diffs), rel=1e-9)
    # Hand-checked: AdaLFL beats the baseline on all diabetes seeds, 1 of 3 on MNIST.
    adalfl = paired_comparison(results, "adalfl")
    assert adalfl[("diabetes", "mlp")].wins == 3
    assert adalfl[("mnist", "lenet5")].wins == 1


def test_paired_table_markdown(results):
    text = format_table(results, markdown=True, paired=True)
    blocks = _table_blocks(text)
    assert len(blocks) == 2
    for table in blocks:
        assert len({line.count("|") for line in table}) == 1
    paired = blocks[1]
    assert _md_cells(paired[0])[2:] == [
        "ML3 (Offline) vs Baseline",
        "AdaLFL (Online) vs Baseline",
    ]
    for line in paired[2:]:
        cells = _md_cells(line)
        task_key = next(k for k in ERRORS if k[0] == cells[0])
        for method, cell in zip(("ml3", "adalfl"), cells[2:], strict=True):
            diffs, wins = _expected_paired(task_key, method)
            assert cell.endswith(f"(wins {wins}/3)")
            assert cell.startswith(f"{statistics.mean(diffs):+.4f} ± {statistics.stdev(diffs):.4f}")
    # Plain text paired table renders too, and without a baseline it says so.
    assert "wins 3/3" in format_table(results, paired=True)
    no_base = [r for r in results if r["method"] != "baseline"]
    assert "paired comparison skipped" in format_table(no_base, paired=True)


def test_per_seed_tables_list_every_value(results):
    runs = [r for r in results if not (r["method"] == "ml3" and r["seed"] == 1)]  # one gap
    text = format_table(runs, markdown=True, split="val", per_seed=True)
    blocks = _table_blocks(text)
    assert len(blocks) == 1 + len(ERRORS)  # the summary, then one table per (task, model)
    for (task, model, _), by_method, block in zip(ERRORS, ERRORS.values(), blocks[1:], strict=True):
        assert f"{task} / {model}, final validation error per seed:" in text
        assert _md_cells(block[0]) == ["Seed"] + [LABELS[m] for m in METHODS]
        assert [_md_cells(line)[0] for line in block[2:]] == [str(s) for s in SEEDS]
        for line in block[2:]:
            seed = int(_md_cells(line)[0])
            for method, cell in zip(METHODS, _md_cells(line)[1:], strict=True):
                err = by_method[method][seed]
                if method == "ml3" and seed == 1:
                    assert cell == "-"
                elif err is None:
                    assert cell == "diverged"
                else:
                    assert cell == f"{err / 2:.4f}"  # val_error is test_error / 2 here
    assert "per seed" not in format_table(runs)


def test_all_diverged_and_missing_cells(results):
    runs = [dict(r) for r in results]
    for r in runs:
        if r["method"] == "ml3" and r["task"] == "mnist":
            r["final"] = {"test_error": None, "diverged": True}
    runs = [r for r in runs if not (r["method"] == "baseline" and r["task"] == "diabetes")]
    text = format_table(runs, markdown=True, paired=True)
    assert "diverged (3/3)" in text
    main = _table_blocks(text)[0]
    mnist = _md_cells(next(line for line in main if line.startswith("| mnist")))
    diabetes = _md_cells(next(line for line in main if line.startswith("| diabetes")))
    assert diabetes[3] == "-"  # no baseline runs for this row
    # With ML3 fully diverged, AdaLFL (finite on 2 seeds) holds the best mean on MNIST.
    assert mnist[5].startswith("**") and not mnist[4].startswith("**")
    assert "nan" not in text.lower()


def test_row_and_method_order():
    def run(task, model, method):
        return {
            "task": task,
            "model": model,
            "method": method,
            "seed": 0,
            "metric": "error_rate",
            "final": {"test_error": 0.1, "diverged": False},
        }

    tasks = ["zoo", "svhn", "cifar100", "cifar10", "mnist", "crime", "california", "digits"]
    runs = [run(t, "m", "baseline") for t in tasks] + [
        run("cifar10", "resnet18", "baseline"),
        run("cifar10", "vgg16", "baseline"),
    ]
    order = [(s.task, s.model) for s in summarize(runs)]
    assert [t for t, _ in order] == [
        "crime",
        "california",
        "digits",
        "mnist",
        "cifar10",
        "cifar10",
        "cifar10",
        "cifar100",
        "svhn",
        "zoo",
    ]
    assert [m for t, m in order if t == "cifar10"] == ["vgg16", "resnet18", "m"]
    assert method_order(["adalfl_taylor3", "adalfl", "baseline", "metalr", "ml3", "abc"]) == [
        "baseline",
        "ml3",
        "metalr",
        "adalfl",
        "abc",
        "adalfl_taylor3",
    ]


def test_method_labels_come_from_results_else_from_the_key():
    assert method_label("adalfl", [{"method": "adalfl", "label": "Ours"}]) == "Ours"
    assert method_label("adalfl_default_eta0.001") == "AdaLFL (Online) [default, eta0.001]"
    assert method_label("ml3") == "ML3 (Offline)" and method_label("abc_x") == "abc_x"
    config = RunConfig("digits", "adaloss_mlp", "adalfl", 0, 10, recipe="default", meta_lr=0.01)
    assert config.label == method_label(config.key) == "AdaLFL (Online) [default, eta0.01]"
    longer = RunConfig("digits", "adaloss_mlp", "adalfl", 0, 10, recipe="default", horizon=10.0)
    assert longer.key == "adalfl_default_horizon10"
    assert RunConfig("digits", "adaloss_mlp", "metalr", 0, 10, horizon=10.0).key == "metalr"


def test_the_base_optimizer_and_batch_settings_are_part_of_the_key():
    assert RunConfig("crime", "adaloss_mlp", "baseline", 0, 10, lr=0.001).key == "baseline"
    assert RunConfig("crime", "adaloss_mlp", "baseline", 0, 10, lr=0.002).key == "baseline_lr0.002"
    varied = RunConfig("digits", "adaloss_mlp", "adalfl", 0, 10, recipe="default", momentum=0.9,
                       weight_decay=1e-4, batch_size=64)  # fmt: skip
    assert varied.key == "adalfl_default_momentum0.9_wd0.0001_batch64"
    cifar = RunConfig("cifar10", "x", "baseline", 0, 10, lr=0.01, momentum=0.9, weight_decay=5e-4)
    assert cifar.key == "baseline" and cifar.label == "Baseline"


def test_empty_results():
    assert format_table([]) == "(no results)"
    assert summarize([]) == []


def _run(method, seed, final, selection=None, val=None, metric="mse", classes=None):
    curve = {"step": [0, 50, 100]}
    if selection is not None:
        curve["selection_error"] = selection
    if val is not None:
        curve["val_error"] = val
    return {
        "task": "t",
        "model": "m",
        "method": method,
        "seed": seed,
        "metric": metric,
        "num_classes": classes,
        "final": {"test_error": final, "selection_error": final, "diverged": False},
        "curve": curve,
    }


def test_collapse_rule():
    trained = _run("adalfl", 0, 0.1, selection=[0.5, 0.2, 0.1])
    assert failure(trained) == "" and not is_collapsed(trained)
    assert failure(_run("adalfl", 0, 0.5, selection=[0.5, 0.2, 0.5])) == "collapsed"  # no better
    # runs from before the selection split are judged on validation error
    assert failure(_run("adalfl", 0, 0.1, val=[0.4, 0.6, 0.7])) == "collapsed"
    assert failure(_run("adalfl", 0, 0.1, val=[0.4, 0.2, 0.1])) == ""
    # a classifier at chance fails even when it started worse (10 classes: error >= 0.8)
    at_chance = _run("adalfl", 0, 0.85, [0.95, 0.9, 0.85], metric="error_rate", classes=10)
    assert failure(at_chance) == "collapsed"
    learning = _run("adalfl", 0, 0.75, [0.95, 0.9, 0.75], metric="error_rate", classes=10)
    assert failure(learning) == ""
    # a regression no better than predicting the training mean (0.12 here) learned nothing
    slow = _run("adalfl", 0, 0.15, selection=[0.5, 0.2, 0.15])
    assert failure(slow) == "" and failure({**slow, "mean_predictor_error": 0.12}) == "collapsed"
    assert failure({**trained, "mean_predictor_error": 0.12}) == ""
    diverged = _run("adalfl", 0, float("nan"), selection=[0.5, 0.2, 0.1])
    assert failure(diverged) == "diverged" and not is_collapsed(diverged)


def test_collapsed_runs_are_counted_and_left_out_of_means():
    runs = [_run("baseline", s, e, selection=[0.5, 0.3, e]) for s, e in enumerate((0.2, 0.3, 0.25))]
    runs += [
        _run("adalfl", 0, 0.1, selection=[0.5, 0.3, 0.1]),
        _run("adalfl", 1, 0.6, selection=[0.5, 0.3, 0.6]),  # collapsed
        _run("adalfl", 2, float("nan"), selection=[0.5, 0.3, 0.2]),  # diverged
    ]
    (ada,) = [s for s in summarize(runs) if s.method == "adalfl"]
    assert (ada.n, ada.n_diverged, ada.n_collapsed, ada.n_failed) == (1, 1, 1, 2)
    assert ada.mean == 0.1 and ada.failures == {1: "collapsed", 2: "diverged"}
    text = format_table(runs, paired=True, per_seed=True, split="selection")
    assert "0.1000 (n=1; 1 diverged, 1 collapsed)" in text
    assert "collapsed (0.6000)" in text  # per seed: marked, with the value it ended at
    assert "(wins 1/3)" in text  # a failed run loses to the baseline
    only_collapsed = [r for r in runs if r["method"] == "baseline"] + [
        _run("adalfl", s, 0.6, selection=[0.5, 0.3, 0.6]) for s in range(3)
    ]
    assert "collapsed (3/3)" in format_table(only_collapsed)
