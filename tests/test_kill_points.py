"""README's promise, tested by killing: a training race killed (SIGKILL, as a
power cut would) at any of faults.KILL_POINTS leaves runs whose metrics
and checkpoints agree, every epoch it completed is still there, and
resuming ends exactly where an uninterrupted race ends."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import ROOT

from resexplorer import faults
from resexplorer.data.sources import load_dataset
from resexplorer.runs.checkpoints import load_run_checkpoint
from resexplorer.runs.store import Run, RunStore, epochs_to_keep
from resexplorer.storage import TEMP_SUFFIX
from resexplorer.training.launch import resumed_race

pytestmark = pytest.mark.slow  # browsers, subprocesses, builds: see pytest.ini

EPOCHS = 4  # keeps epochs 0, 1, 2 and 4: epoch 3's checkpoint goes once epoch 4 is committed
TRAIN = [
    *("train", "--model", "resnet-8", "--model", "plain-8", "--data", "synthetic", "--device", "cpu"),
    *("--epochs", str(EPOCHS), "--batch-size", "32", "--train-subset", "64", "--test-subset", "32", "--log-every", "1"),
]
# Reaches, in a race of two models with two steps an epoch: a checkpoint
# is written for resnet-8 then plain-8 at initialisation and at each epoch
# end, so "@5" of an epoch point is resnet-8's epoch 3 with plain-8 at 2.
KILLS = [
    "run-created@1",  # plain-8's run not made yet
    "run-created@2",
    "checkpoint-unrenamed@1",  # before any checkpoint is in place
    "checkpoint-unrenamed@5",
    "step-logged@5",
    "epoch-saved@3",
    "epoch-saved@8",
    "epoch-line-torn@3",
    "epoch-committed@5",
    "epoch-committed@7",  # resnet-8 ends; its non-kept epoch 3 not yet removed
    "epoch-tidied@7",
    "epoch-tidied@8",  # every epoch committed, no status written
]
RESULTS = ("epoch", "step", "train_loss", "train_error", "test_loss", "test_error", "lr")


def test_every_kill_point_is_exercised():
    assert {kill.split("@")[0] for kill in KILLS} == set(faults.KILL_POINTS)


def test_the_switch_counts_reaches_and_refuses_a_misspelt_point(monkeypatch):
    monkeypatch.setattr(faults, "_reached", faults.Counter())
    monkeypatch.setenv(faults.KILL_AT, "epoch-saved@2")
    assert [faults.due("epoch-saved"), faults.due("step-logged"), faults.due("epoch-saved")] == [False, False, True]
    monkeypatch.setenv(faults.KILL_AT, "epoch-saves")
    with pytest.raises(ValueError, match="unknown kill point 'epoch-saves'"):
        faults.due("epoch-saved")


def _train(runs: Path, kill: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != faults.KILL_AT}
    if kill:
        env[faults.KILL_AT] = kill
    command = [sys.executable, "-m", "resexplorer", *TRAIN, "--runs", str(runs)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _two_at_a_time(jobs: dict[str, Path]) -> Iterator[tuple[str, int, str]]:
    """(kill, return code, stderr) of each training, two processes at once."""
    pending = list(jobs.items())
    running: list[tuple[str, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < 2:
            kill, runs = pending.pop(0)
            running.append((kill, _train(runs, None if kill == "none" else kill)))
        kill, process = running.pop(0)
        _, err = process.communicate(timeout=300)
        yield kill, process.returncode, err


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict[str, Path]:
    """The runs folder of an uninterrupted race ("none") and of one race
    killed at each point."""
    base = tmp_path_factory.mktemp("kills")
    jobs = {kill: base / kill.replace("@", "-at-") for kill in ["none", *KILLS]}
    for kill, code, err in _two_at_a_time(jobs):
        expected = 0 if kill == "none" else -signal.SIGKILL
        assert code == expected, f"{kill}: exit {code}\n{err[-2000:]}"
    return jobs


def _by_model(root: Path) -> dict[str, Run]:
    return {run.config()["model_name"]: run for run in RunStore(root).list()}


def _files(run: Run) -> list[str]:
    return sorted(p.name for p in run.checkpoint_dir.iterdir())


@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_race_agrees_with_itself_and_resumes_to_the_uninterrupted_end(killed, kill):
    runs = _by_model(killed[kill])
    assert runs, f"{kill}: no run listed"
    committed, initialised = {}, {}
    for name, run in runs.items():
        initialised[name] = run.checkpoint_path(0).exists()
        assert run.status()["status"] == "interrupted", (kill, name)
        records = run.metrics("epoch")
        epochs = [r["epoch"] for r in records]
        assert epochs == list(range(1, len(epochs) + 1)), (kill, name, epochs)
        committed[name] = records
        done = len(epochs)
        # the checkpoint the run answers for agrees with its metrics
        if initialised[name]:
            last = load_run_checkpoint(run, "last")
            assert last["epoch"] == done, (kill, name)
            assert last["step"] == (records[-1]["step"] if records else 0), (kill, name)
        kept = [e for e in sorted(epochs_to_keep(EPOCHS)) if e <= done]
        if done:
            assert run.kept_epochs() == kept, (kill, name)

    resumed = resumed_race(list(runs.values()), load_dataset("synthetic"))
    for name, run in runs.items():  # resuming cleared what the kill left: temp files, uncommitted epochs
        done = len(committed[name])
        wanted = sorted({e for e in epochs_to_keep(EPOCHS) if e <= done} | {done})
        expected = [f"epoch-{e:04d}.pt" for e in wanted] if initialised[name] else []
        assert _files(run) == expected, (kill, name)
    assert set(resumed.run().values()) == {"done"}, kill

    straight = _by_model(killed["none"])
    for name, run in runs.items():
        after, truth = run.metrics("epoch"), straight[name].metrics("epoch")
        assert after[: len(committed[name])] == committed[name], f"{kill}: {name} lost or changed a completed epoch"
        assert len(after) == len(truth) == EPOCHS, (kill, name)
        for ra, rb in zip(after, truth):
            for key in RESULTS:
                assert ra[key] == pytest.approx(rb[key], abs=1e-5), (kill, name, key)
        steps, true_steps = run.metrics("train"), straight[name].metrics("train")
        assert [s["step"] for s in steps] == [s["step"] for s in true_steps], (kill, name)
        wa, wb = load_run_checkpoint(run)["model"], load_run_checkpoint(straight[name])["model"]
        assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wb), (kill, name)
        assert run.kept_epochs() == sorted(epochs_to_keep(EPOCHS)), (kill, name)
        assert _files(run) == _files(straight[name]), f"{kill}: {name} kept leftovers"
        assert not list(run.path.rglob(f"*{TEMP_SUFFIX}")), kill
