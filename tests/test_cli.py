import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from resexplorer.cli import main
from resexplorer.cli.main import _parser, train_config_of
from resexplorer.data.synthetic import make_synthetic, write_image_folder
from resexplorer.runs.recipe import RunOptions, TrainConfig, settings
from resexplorer.runs.store import Run, RunStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder_and_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    folder = write_image_folder(make_synthetic(n_train=80, n_test=30, num_classes=3, seed=4), base / "images")
    return folder, base / "runs"


@pytest.fixture(scope="module")
def trained(folder_and_runs, tmp_path_factory):
    """One resnet-8 trained for an epoch by the command line, in a runs
    folder of its own: the tests that read a run do not depend on the order
    they run in."""
    folder, _ = folder_and_runs
    runs = tmp_path_factory.mktemp("trained") / "runs"
    args = ["--data", str(folder), "--epochs", "1", "--device", "cpu", "--runs", str(runs)]
    assert main(["train", "--model", "resnet-8", *args]) == 0
    (run,) = RunStore(runs).list()
    return run


def test_train_then_evaluate_reproduces_the_claimed_test_error(folder_and_runs, capsys):
    folder, runs = folder_and_runs
    code = main(
        [
            "train",
            "--model",
            "resnet-8",
            "--model",
            "plain-8",
            "--data",
            str(folder),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--runs",
            str(runs),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "resnet-8" in out and "plain-8" in out and "done" in out  # the summary table
    for run in RunStore(runs).list():
        claimed = run.metrics("epoch")[-1]
        assert main(["evaluate", str(run.path), "--data", str(folder), "--json", "--device", "cpu"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert set(result) == {"model", "test_error", "test_loss", "n"}
        assert result["model"] == run.config()["model_name"] and result["n"] == 30
        assert result["test_error"] == pytest.approx(claimed["test_error"], abs=1e-9)
        assert result["test_loss"] == pytest.approx(claimed["test_loss"], rel=1e-5)
        # an earlier kept moment evaluates too, in words
        assert main(["evaluate", str(run.path), "--data", str(folder), "--checkpoint", "0", "--device", "cpu"]) == 0
        assert "test error" in capsys.readouterr().out


def test_runs_lists_status_and_errors(trained, capsys):
    runs = trained.path.parent
    assert main(["runs", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "resnet-8" in out and "done" in out and "test err" in out
    assert main(["runs", "--runs", str(runs / "nothing")]) == 0
    assert "no runs" in capsys.readouterr().out


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "resexplorer", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--model", "resnet-21", "--data", "synthetic", "--epochs", "1"], "6n+2"),
        (
            ["train", "--model", "resnet-20", "--data", "/no/such/folder", "--epochs", "1"],
            "neither 'cifar10' nor an existing folder",
        ),
        (["train", "--model", "resnet-20", "--data", "synthetic", "--epochs", "many"], "invalid int value"),
        (["train", "--model", "resnet-20", "--data", "synthetic", "--epochs", "0"], "epochs must be"),
        (["train", "--data", "synthetic", "--epochs", "1"], "--model"),
        (["evaluate", "/no/such/run", "--data", "synthetic"], "no run folder"),
        (["fly"], "invalid choice"),
    ],
)
def test_mistakes_print_one_line_and_exit_2(args, words):
    result = _cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr


@pytest.mark.slow
def test_evaluating_a_foreign_checkpoint_is_a_clear_error(folder_and_runs, trained, tmp_path):
    folder, _ = folder_and_runs
    run = trained
    import shutil

    copy = shutil.copytree(run.path, tmp_path / run.run_id)
    Run(copy).checkpoint_path("last").write_bytes(b"PK\x03\x04 not really a zip")
    result = _cli("evaluate", str(copy), "--data", str(folder))
    assert result.returncode == 2 and "not a readable ResNet Explorer checkpoint" in result.stderr
    assert "Traceback" not in result.stderr
    # a pickle of another protocol than torch's: torch's warning about it once came first
    Run(copy).checkpoint_path("last").write_bytes(pickle.dumps({"format": "x"}, protocol=4))
    result = _cli("evaluate", str(copy), "--data", str(folder))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    # and a model evaluated on data with other classes
    result = _cli("evaluate", str(run.path), "--data", "synthetic")
    assert result.returncode == 2 and "learned the classes" in result.stderr


def test_every_training_setting_is_a_flag_that_reaches_the_config():
    """The flags are the fields of TrainConfig and RunOptions: each one set
    away from its default on the command line arrives in the recipe or in
    the run options, whichever holds it."""
    changed = {
        "epochs": 7, "batch_size": 64, "lr": 0.05, "momentum": 0.8, "weight_decay": 5e-4, "schedule": "paper",
        "warmup_epochs": 1.5, "seed": 4, "train_subset": 500, "test_subset": 100, "device": "cpu",
        "bf16": False, "eval_every": 2, "augment": False, "log_every": 3, "compile": "off",
    }  # fmt: skip
    assert set(changed) == {s.name for s in settings()}, "a new TrainConfig or RunOptions field: add it here"
    argv = ["train", "--model", "resnet-8", "--data", "synthetic"]
    for name, value in changed.items():
        flag = name.replace("_", "-")
        argv += [f"--no-{flag}"] if value is False else [f"--{flag}", str(value)]
    how = {"device", "bf16", "log_every", "compile"}
    recipe = TrainConfig(**{k: v for k, v in changed.items() if k not in how})
    assert train_config_of(_parser().parse_args(argv)) == (recipe, RunOptions(**{k: changed[k] for k in how}))
    defaults = train_config_of(_parser().parse_args(["train", "--model", "resnet-8", "--data", "x", "--epochs", "3"]))
    assert defaults == (TrainConfig(epochs=3), RunOptions())


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--seed", str(2**70)], "seed must be"),
        (["--log-every", "-1"], "log_every must be"),
        (["--momentum", "-0.5"], "momentum must be"),
        (["--momentum", "2"], "momentum must be in [0, 1)"),
        (["--warmup-epochs", "-1"], "warm-up epochs must be >= 0"),
        (["--weight-decay", "nan"], "weight decay must be"),
        (["--device", "mps"], "no MPS"),
        (["--device", "cuda:7"], "no CUDA"),
        (["--device", "cudaX"], "unknown device"),
    ],
)
def test_bad_settings_are_refused_before_any_run_folder_exists(tmp_path, capsys, flags, words):
    argv = ["train", "--model", "resnet-8", "--data", "synthetic", "--epochs", "1", "--runs", str(tmp_path / "runs")]
    assert main(argv + flags) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
