"""The `adaloss` command end to end on tiny settings: run (resumable), table, plot."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from adaloss.bench.cli import main
from adaloss.bench.config import RunConfig
from adaloss.bench.runner import evaluate_error, prepare_run

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def data_dir(monkeypatch):
    folder = Path(os.environ.get("ADALOSS_DATA", DATA))
    if not (folder / "crime" / "communities.data").exists():
        pytest.skip(f"shared data not found at {folder}")
    monkeypatch.setenv("ADALOSS_DATA", str(folder))
    return folder


TINY = ["--steps", "20", "--init-steps", "3", "--eval-every", "10", "--quiet", "--threads", "1"]
# The default recipe's key on a regression given neither --loss nor --check-share.
PAIR = "adalfl_default_monotone_share0.5"
# The learned loss these tests' keys name when they test another option on a regression:
# without it the recipe's regression pair would add _monotone and _share0.5 to each key.
NETWORK = ["--loss", "network"]


def test_run_table_plot_regression(tmp_path, data_dir, capsys):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--seeds", "2", "--out", str(out), *TINY]
    assert main(args) == 0
    files = sorted(out.rglob("seed*.json"))
    assert len(files) == 8  # 4 methods x 2 seeds
    # AdaLFL runs the default recipe (warm start: no offline steps, so no "_init3" in the key),
    # on a regression with its monotone loss and half the validation examples kept for checks
    record = json.loads((out / f"diabetes/adaloss_mlp/{PAIR}/seed0.json").read_text())
    assert record["config"]["recipe"] == "default"
    assert (record["config"]["loss"], record["config"]["check_share"]) == ("monotone", 0.5)
    assert record["curve"]["step"] == [0, 10, 20]
    assert len(record["curve"]["selection_error"]) == 3
    assert record["final"]["selection_error"] == record["curve"]["selection_error"][-1]
    assert record["config"]["lr"] == 0.001 and record["config"]["init_steps"] == 3
    assert set(record["versions"]) >= {"adaloss", "torch", "torchopt", "timm"}
    assert record["loss_grid"]["x_label"] == "Error" and record["loss_grid"]["steps"][0] == 0
    assert record["wall_time_s"] > 0

    # Same seed => same θ_0 for every method: the first evaluation is identical.
    first = {
        json.loads(f.read_text())["method"]: json.loads(f.read_text())["curve"]["test_error"][0]
        for f in files
        if f.name == "seed1.json"
    }
    assert len(set(first.values())) == 1, first

    # Resumable: nothing is recomputed.
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    capsys.readouterr()
    assert main(args) == 0
    assert "done already" in capsys.readouterr().out
    assert all(f.stat().st_mtime_ns == t for f, t in mtimes.items())

    assert main(["table", str(out), "--markdown", "--paired"]) == 0
    table = capsys.readouterr().out
    assert "diabetes" in table and "AdaLFL" in table and "wins" in table
    assert main(["table", str(out), "--split", "val"]) == 0
    assert capsys.readouterr().out.startswith("Final validation error")
    assert main(["table", str(out), "--split", "selection"]) == 0
    assert capsys.readouterr().out.startswith("Final selection error")
    assert main(["table", str(out), "--per-seed"]) == 0
    assert "diabetes / adaloss_mlp, final test error per seed:" in capsys.readouterr().out

    assert main(["plot", str(out), "--out", str(tmp_path / "fig")]) == 0
    pngs = sorted((tmp_path / "fig").glob("*.png"))
    assert {p.name for p in pngs} == {
        "curves_diabetes_adaloss_mlp.png",
        f"loss_diabetes_adaloss_mlp_{PAIR}.png",
    }


def test_run_classification_variants(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = [
        "run", "--task", "digits", "--model", "adaloss_logistic", "--methods", "adalfl,ml3",
        "--seeds", "1", "--loss", "taylor3", "--meta-objective", "training", "--recipe", "paper",
        "--out", str(out), *TINY,
    ]  # fmt: skip
    assert main(args) == 0
    names = sorted(p.parent.name for p in out.rglob("seed0.json"))
    # Every option that changes the result is in the key, so variants never overwrite each other.
    assert names == ["adalfl_taylor3_training_init3", "ml3_taylor3_init3"]
    record = json.loads(next(out.rglob("adalfl_taylor3_training_init3/seed0.json")).read_text())
    assert record["metric"] == "error_rate"
    assert set(record["loss_grid"]["curves"]) == {"y = 1", "y = 0"}


def test_unknown_method_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="unknown methods"):
        main(["run", "--task", "diabetes", "--methods", "adalfl,magic", "--out", str(tmp_path)])


def test_a_missing_optional_dependency_prints_the_pip_line(tmp_path, monkeypatch, capsys):
    """Without the bench extra, `adaloss plot` says what to install instead of a traceback."""
    monkeypatch.delitem(sys.modules, "adaloss.bench.plots", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["adaloss: matplotlib is not installed; to fix: pip install 'adaloss[bench]'"]


def test_an_unrelated_import_error_is_not_hidden(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "adaloss.bench.plots", None)
    with pytest.raises(ImportError):
        main(["plot", str(tmp_path)])


def test_run_passes_the_horizon_to_the_optimizer(data_dir):
    config = RunConfig("diabetes", "adaloss_mlp", "adalfl", 0, 5, recipe="default", horizon=10.0)
    assert prepare_run(config).opt.horizon == 10.0
    assert prepare_run(RunConfig("diabetes", "adaloss_mlp", "adalfl", 0, 5,
                                 recipe="default")).opt.horizon == "momentum"  # fmt: skip


def test_run_meta_anchor_files_the_variant_under_its_own_key(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "adalfl", "--meta-anchor", "1", "--seeds",
            "1", "--out", str(out), *NETWORK, *TINY]  # fmt: skip
    assert main(args) == 0
    record = json.loads(
        (out / "diabetes/adaloss_mlp/adalfl_default_anchor1/seed0.json").read_text()
    )
    assert record["config"]["meta_anchor"] == 1.0
    assert [p.name for p in out.rglob("seed*.json")] == ["seed0.json"]


def test_run_patience_files_its_key_and_records_when_it_stopped(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "adalfl,baseline", "--patience", "2",
            "--seeds", "1", "--out", str(out), *NETWORK, *TINY]  # fmt: skip
    assert main(args) == 0
    record = json.loads(
        (out / "diabetes/adaloss_mlp/adalfl_default_patience2/seed0.json").read_text()
    )
    assert record["config"]["patience"] == 2
    assert record["final"]["stopped_at"] is None  # 20 steps: the meta-objective still falls
    baseline = json.loads((out / "diabetes/adaloss_mlp/baseline/seed0.json").read_text())
    assert baseline["final"]["stopped_at"] is None
    assert prepare_run(RunConfig("diabetes", "adaloss_mlp", "adalfl", 0, 5, recipe="default",
                                 patience=0)).opt.patience is None  # fmt: skip
    with pytest.raises(SystemExit):
        main(["run", "--task", "diabetes", "--patience", "-1", "--out", str(tmp_path)])
    frozen = RunConfig("diabetes", "adaloss_mlp", "adalfl", 0, 5, lr=0.001, recipe="default",
                       patience=9, after_stop="frozen")  # fmt: skip
    assert frozen.key == "adalfl_default_patience9_frozen"
    assert prepare_run(frozen).opt.recipe.after_stop == "frozen"
    same = RunConfig("diabetes", "adaloss_mlp", "adalfl", 0, 5, lr=0.001, recipe="default",
                     patience=9, after_stop="task_loss")  # fmt: skip
    assert same.key == "adalfl_default_patience9"  # the recipe's own: no suffix


def test_run_with_label_noise_files_a_row_of_its_own(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "baseline", "--label-noise", "0.3",
            "--seeds", "1", "--out", str(out), *TINY]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "diabetes-noise0.3/adaloss_mlp/baseline/seed0.json").read_text())
    assert record["task"] == "diabetes-noise0.3" and record["config"]["label_noise"] == 0.3
    clean = prepare_run(RunConfig("diabetes", "adaloss_mlp", "baseline", 0, 5))
    noisy = prepare_run(RunConfig("diabetes", "adaloss_mlp", "baseline", 0, 5, label_noise=0.3))
    assert not torch.equal(clean.data.train.y, noisy.data.train.y)
    assert torch.equal(clean.data.selection.y, noisy.data.selection.y)


def test_a_check_split_is_recorded_beside_the_others_under_a_key_of_its_own(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "baseline,adalfl", "--recipe", "default",
            "--check-fraction", "0.5", "--seeds", "1", "--out", str(out), *TINY]  # fmt: skip
    assert main(args) == 0
    for key in ("baseline_check0.5", f"{PAIR}_check0.5"):
        record = json.loads((out / f"diabetes/adaloss_mlp/{key}/seed0.json").read_text())
        curve = record["curve"]
        assert len(curve["check_error"]) == len(curve["step"]) == len(curve["check_loss"])
        assert curve["check_loss"] == curve["check_error"]  # regression: both are the MSE
        assert record["final"]["check_error"] == curve["check_error"][-1]
    plain = prepare_run(RunConfig("diabetes", "adaloss_mlp", "baseline", 0, 5))
    held = prepare_run(RunConfig("diabetes", "adaloss_mlp", "baseline", 0, 5, check_fraction=0.5))
    assert len(held.data.val) + len(held.data.check) == len(plain.data.val)
    assert torch.equal(held.data.train.x, plain.data.train.x)  # training is not touched
    assert plain.data.check is None
    config = RunConfig("diabetes", "adaloss_mlp", "baseline", 0, 5, check_fraction=0.05,
                       check_from="train")  # fmt: skip
    assert config.key.startswith("baseline_traincheck0.05")
    held = prepare_run(config)
    assert len(held.data.train) + len(held.data.check) == len(plain.data.train)
    assert torch.equal(held.data.val.x, plain.data.val.x)  # the meta-objective keeps it all


def test_a_hand_over_run_ends_on_the_baseline_when_the_twin_stays_ahead(tmp_path, data_dir):
    out = tmp_path / "runs"
    common = ["run", "--task", "diabetes", "--recipe", "unchecked", "--check-fraction", "0.5",
              "--seeds", "1", "--out", str(out), "--steps", "40", "--eval-every", "4"]  # fmt: skip
    assert main([*common, "--methods", "baseline"]) == 0
    assert main([*common, "--methods", "adalfl", "--handover", "1"]) == 0
    rows = out / "diabetes/adaloss_mlp"
    base = json.loads((rows / "baseline_check0.5/seed0.json").read_text())
    run = json.loads((rows / "adalfl_unchecked_handover1_check0.5/seed0.json").read_text())
    at = run["final"]["handed_over_at"]
    assert at is not None and at % 4 == 0  # a check's step: an evaluation's
    after = run["curve"]["step"].index(at)  # recorded after the hand-over: the baseline's
    for key in ("selection_error", "check_error", "train_error"):
        assert run["curve"][key][after:] == base["curve"][key][after:]
        assert run["curve"][key][after - 1] != base["curve"][key][after - 1]
    assert main([*common, "--methods", "adalfl", "--handover", "final"]) == 0
    final = json.loads((rows / "adalfl_unchecked_handoverfinal_check0.5/seed0.json").read_text())
    assert final["final"]["handed_over_at"] in (None, 40)  # only the last evaluation decides
    assert final["final"]["check_error"] <= base["final"]["check_error"]  # the better kept
    if final["final"]["handed_over_at"]:
        assert final["final"]["selection_error"] == base["final"]["selection_error"]
    with pytest.raises(ValueError, match="pass --check-fraction"):
        main(["run", "--task", "diabetes", "--methods", "adalfl", "--recipe", "unchecked",
              "--handover", "1", "--seeds", "1", "--out", str(out), *TINY])  # fmt: skip


def test_check_every_hands_over_inside_the_run_with_no_check_split(tmp_path, data_dir):
    out = tmp_path / "runs"
    common = ["run", "--task", "diabetes", "--recipe", "default", "--seeds", "1",
              "--out", str(out), "--steps", "40", "--eval-every", "4"]  # fmt: skip
    assert main([*common, "--methods", "baseline"]) == 0
    handover = ["--methods", "adalfl", "--handover", "1", "--check-every", "5", *NETWORK]
    assert main([*common, *handover]) == 0
    rows = out / "diabetes/adaloss_mlp"
    base = json.loads((rows / "baseline/seed0.json").read_text())
    run = json.loads((rows / "adalfl_default_handover1_every5/seed0.json").read_text())
    at = run["final"]["handed_over_at"]
    assert at is not None and at % 5 == 0 and "check_error" not in run["curve"]
    later = [i for i, step in enumerate(run["curve"]["step"]) if step >= at]
    assert later and all(
        run["curve"]["selection_error"][i] == base["curve"]["selection_error"][i] for i in later
    )  # from the hand-over on, the run is the baseline


def test_check_share_keeps_examples_from_the_meta_objective_under_its_own_key(tmp_path, data_dir):
    out = tmp_path / "runs"
    common = ["run", "--task", "diabetes", "--recipe", "default", "--seeds", "1",
              "--out", str(out), "--steps", "12", "--eval-every", "4",
              "--methods", "adalfl", *NETWORK]  # fmt: skip
    assert main([*common, "--check-share", "0.5"]) == 0
    assert main(common) == 0
    rows = out / "diabetes/adaloss_mlp"
    shared = json.loads((rows / "adalfl_default_share0.5/seed0.json").read_text())
    whole = json.loads((rows / "adalfl_default/seed0.json").read_text())
    assert shared["config"]["check_share"] == 0.5 and whole["config"]["check_share"] is None
    # same θ_0, ϕ_0 and batches; a meta-objective on fewer examples moves the model otherwise
    assert shared["curve"]["val_error"][-1] != whole["curve"]["val_error"][-1]


def test_learn_lr_and_learn_lr_longer_run_under_their_own_keys(tmp_path, data_dir, capsys):
    out = tmp_path / "runs"
    common = ["run", "--task", "diabetes", "--seeds", "1", "--out", str(out), "--steps", "12",
              "--eval-every", "4", "--methods", "adalfl", *NETWORK, "--learn-lr"]  # fmt: skip
    assert main(common) == 0
    assert main([*common, "longer"]) == 0
    assert main([*common, "longer", "--lr-horizon", "inf"]) == 0
    rows = out / "diabetes/adaloss_mlp"
    free = json.loads((rows / "adalfl_default_learnlr/seed0.json").read_text())
    longer = json.loads((rows / "adalfl_default_learnlonger/seed0.json").read_text())
    assert free["config"]["learn_lr"] is True and longer["config"]["learn_lr"] == "longer"
    traced = json.loads((rows / "adalfl_default_learnlonger_lrhinf/seed0.json").read_text())
    assert traced["config"]["lr_horizon"] == math.inf
    with pytest.raises(SystemExit):
        main([*common, "shorter"])
    assert "expected nothing, 'longer' or 'off'" in capsys.readouterr().err


def test_keep_fit_runs_under_its_own_keys(tmp_path, data_dir, capsys):
    out = tmp_path / "runs"
    common = ["run", "--task", "diabetes", "--seeds", "1", "--out", str(out), "--steps", "12",
              "--eval-every", "4", "--methods", "adalfl", *NETWORK]  # fmt: skip
    assert main([*common, "--keep-fit"]) == 0
    assert main([*common, "--keep-fit", "agree"]) == 0
    assert main([*common, "--keep-fit", "off"]) == 0  # the recipe's value: the default's key
    rows = out / "diabetes/adaloss_mlp"
    kept = json.loads((rows / "adalfl_default_keepfit/seed0.json").read_text())
    assert kept["config"]["keep_fit"] is True
    agree = json.loads((rows / "adalfl_default_keepagree/seed0.json").read_text())
    assert agree["config"]["keep_fit"] == "agree"
    default = json.loads((rows / "adalfl_default/seed0.json").read_text())
    assert default["config"]["keep_fit"] is False
    with pytest.raises(SystemExit):
        main([*common, "--keep-fit", "always"])
    assert "expected nothing, 'agree' or 'off'" in capsys.readouterr().err


def test_label_noise_outside_zero_one_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--task", "diabetes", "--label-noise", "1.5", "--out", str(tmp_path)])
    assert "fraction in [0, 1)" in capsys.readouterr().err


def test_save_states_keeps_the_final_model_and_loss_beside_the_record(tmp_path, data_dir):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "baseline,adalfl", "--seeds", "1",
            "--save-states", "--out", str(out), *TINY]  # fmt: skip
    assert main(args) == 0
    for key in ("baseline", PAIR):
        folder = out / "diabetes/adaloss_mlp" / key
        record = json.loads((folder / "seed0.json").read_text())
        states = torch.load(folder / "seed0.pt")
        run = prepare_run(RunConfig(**record["config"]))
        run.model.load_state_dict(states["model"])  # the trained θ, not θ_0
        error = evaluate_error(run.model, run.task, run.data.selection, torch.device("cpu"))
        assert error == pytest.approx(record["final"]["selection_error"], rel=1e-6)
        assert error != pytest.approx(record["curve"]["selection_error"][0], rel=1e-3)
        if key == "baseline":
            assert states["loss"] is None
        else:
            run.opt.loss.load_state_dict(states["loss"])
    assert not list(out.rglob("*.tmp"))


def test_a_finished_run_prints_its_selection_error_not_its_test_error(tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["run", "--task", "diabetes", "--methods", "baseline", "--seeds", "1",
            "--out", str(out), *TINY]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "diabetes/adaloss_mlp/baseline/seed0.json").read_text())
    line = capsys.readouterr().out
    assert f"selection mse {record['final']['selection_error']:.4f}" in line
    assert "test" not in line.replace(str(tmp_path), "")


def test_a_run_given_none_of_the_task_settings_takes_the_recipes_under_their_key():
    """The recipe's settings for the task's kind are written into the config, so the key is
    the one the same run passed by hand was filed under (results/default-confirm's
    ``adalfl_default_monotone_share0.5`` and ``adalfl_default_learnlr``), and ``--loss
    network`` or ``--learn-lr off`` reaches the default before session 28."""
    import argparse

    from adaloss.bench.config import add_run_arguments, configs_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)

    def keys(*options: str) -> list[str]:
        args = parser.parse_args(["--methods", "ml3,adalfl", "--seeds", "1", *options])
        return [c.key for c in configs_from_args(args)]

    assert keys("--task", "diabetes") == ["ml3", "adalfl_default_monotone_share0.5"]
    assert keys("--task", "diabetes", "--loss", "network") == ["ml3", "adalfl_default"]
    assert keys("--task", "diabetes", "--check-share", "0") == ["ml3", "adalfl_default"]
    assert keys("--task", "crime", "--handover", "0")[1] == "adalfl_default_monotone_nohandover"
    digits = ("--task", "digits", "--model", "adaloss_mlp")
    assert keys(*digits)[1] == "adalfl_default_learnlr"  # the classification default
    assert keys(*digits, "--learn-lr", "off")[1] == "adalfl_default"
    assert keys(*digits, "--learn-lr", "longer")[1] == "adalfl_default_learnlonger"
    assert keys(*digits, "--meta-anchor", "1")[1] == "adalfl_default_anchor1"  # its own Adam
    assert keys("--task", "diabetes", "--recipe", "paper")[1] == "adalfl"
    rate = ("--step-length-meta-lr", "0.01")
    assert keys(*digits, *rate)[1] == "adalfl_default_learnlr_slr0.01"
    assert keys("--task", "crime", "--learn-lr", *rate)[1] == (
        "adalfl_default_monotone_share0.5_learnlr_slr0.01"
    )


def test_a_config_built_by_hand_runs_what_its_key_says(data_dir):
    """``RunConfig`` without learn_lr is the key without ``_learnlr``: the step length off, as
    every run filed under ``adalfl_default`` before session 28; the command writes the
    recipe's per-task choice in (test above)."""
    for learn_lr, key, learns in ((None, "adalfl_default", False),
                                  (True, "adalfl_default_learnlr", True)):  # fmt: skip
        config = RunConfig("digits", "adaloss_logistic", "adalfl", 0, 5, recipe="default",
                           learn_lr=learn_lr)  # fmt: skip
        assert config.key == key
        assert (prepare_run(config).opt.step_length is not None) is learns
