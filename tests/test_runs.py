import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ON_CPU, StopAfterEpoch

from resexplorer.errors import CheckpointError, RunDamaged, RunError
from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import build_model
from resexplorer.runs.checkpoints import (
    load_checkpoint,
    load_run_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import Run, RunStore
from resexplorer.training.jobs import JobManager
from resexplorer.training.launch import new_race, resumed_race

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished_runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(epochs=4, batch_size=32, lr=0.05)
    models = [ModelConfig("resnet", 8, num_classes=4), ModelConfig("plain", 8, num_classes=4)]
    race, runs = new_race(models, tiny_data, config, root, options=ON_CPU)
    race.run()
    return root, runs


def test_a_run_folder_holds_config_metrics_status_and_kept_checkpoints(finished_runs):
    root, runs = finished_runs
    run = runs["resnet-8"]
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"]["arch"] == "resnet" and config["train"]["epochs"] == 4
    assert config["data"]["source"] == "synthetic" and config["data"]["n_train"] == 120
    assert {"torch", "torchvision", "python", "resexplorer"} <= set(config["versions"])
    assert [r["epoch"] for r in run.metrics("epoch")] == [1, 2, 3, 4]
    assert run.metrics("train") and all("loss" in r for r in run.metrics("train"))
    assert run.status()["status"] == "done"
    assert run.kept_epochs() == [0, 1, 2, 4]  # initialisation, first, middle, end
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == [f"epoch-000{e}.pt" for e in (0, 1, 2, 4)]
    assert load_run_checkpoint(run, "last")["epoch"] == 4


def test_a_run_folder_from_before_epoch_commits_reads_and_resumes(tiny_data, tmp_path):
    """Older folders keep their newest epoch in last.pt: it still answers
    for 'last', resumes, and goes once a newer epoch is committed."""
    stopper = StopAfterEpoch(3)
    models = [ModelConfig("resnet", 8, num_classes=4)]
    config = TrainConfig(epochs=4, batch_size=32, lr=0.05)
    race, runs = new_race(
        models, tiny_data, config, tmp_path, [stopper], should_stop=lambda: stopper.stop, options=ON_CPU
    )
    race.run()
    run = runs["resnet-8"]
    (run.checkpoint_dir / "epoch-0003.pt").rename(run.checkpoint_dir / "last.pt")  # the older layout
    assert run.checkpoint_path("last").name == "last.pt" and load_run_checkpoint(run)["epoch"] == 3
    assert run.kept_epochs() == [0, 1, 2]
    resumed_race([run], tiny_data).run()
    assert [r["epoch"] for r in run.metrics("epoch")] == [1, 2, 3, 4]
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == [f"epoch-000{e}.pt" for e in (0, 1, 2, 4)]


def test_checkpoint_rebuilds_the_model_from_itself_alone(finished_runs, tiny_data):
    _, runs = finished_runs
    ckpt = load_run_checkpoint(runs["plain-8"], "last")
    model = model_from_checkpoint(ckpt)
    assert model.config == ModelConfig("plain", 8, num_classes=4)
    x = torch.randn(2, 3, 32, 32)
    reference = build_model(model.config).eval()
    reference.load_state_dict(ckpt["model"])
    assert torch.equal(model(x), reference(x))


def test_half_precision_checkpoints_load_as_float32(finished_runs, tmp_path):
    _, runs = finished_runs
    ckpt = load_run_checkpoint(runs["resnet-8"], "last")
    half = {**ckpt, "model": {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}}
    torch.save(half, tmp_path / "half.pt")
    loaded = load_checkpoint(tmp_path / "half.pt")
    assert all(v.dtype == torch.float32 for v in loaded["model"].values() if v.is_floating_point())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model_from_checkpoint(loaded)(x), model_from_checkpoint(ckpt)(x), atol=0.05)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "write,message",
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 10), "not a readable"),
        (lambda p: p.write_text(""), "not a readable"),
        (lambda p: torch.save(build_model("resnet-8").state_dict(), p), "not a ResNet Explorer checkpoint"),
        (lambda p: torch.save({"format": "resexplorer-checkpoint", "version": 1}, p), "damaged"),
        (lambda p: torch.save({"format": "resexplorer-checkpoint", "version": 99}, p), "newer"),
        (lambda p: p.write_bytes(pickle.dumps(Evil())), "not a readable"),
    ],
)
def test_foreign_and_damaged_checkpoints_give_clear_errors(tmp_path, write, message):
    path = tmp_path / "x.pt"
    write(path)
    with pytest.raises(CheckpointError, match=message) as refused:
        load_checkpoint(path)
    assert "weights_only" not in str(refused.value)  # never advise turning the safety off


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": [1, 2, 3]}, "model is not a dict of tensors"),
        ({"model": {"conv1.weight": "text"}}, "model is not a dict of tensors"),
        ({"version": "1"}, "version is not a number"),
        ({"data": {"classes": ["a", "b"]}}, "data lacks mean, std"),
        ({"model_config": "resnet-8"}, "model_config is not a dict"),
        ({"epoch": "two"}, "epoch is not a number"),
    ],
)
def test_crafted_checkpoints_are_refused_as_damaged_not_with_a_traceback(finished_runs, tmp_path, change, message):
    _, runs = finished_runs
    ckpt = load_run_checkpoint(runs["resnet-8"], "last")
    torch.save({**ckpt, **change}, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "crafted.pt")


def test_a_checkpoint_without_optimizer_state_does_not_resume(finished_runs, tiny_data, tmp_path):
    """A shipped compact copy has no optimizer or RNG state: resuming it is
    refused with a message, not a KeyError."""
    import shutil

    from resexplorer.training.launch import resumed_race

    _, runs = finished_runs
    copy = tmp_path / runs["resnet-8"].run_id
    shutil.copytree(runs["resnet-8"].path, copy)
    ckpt = load_run_checkpoint(Run(copy), "last")
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")}, Run(copy).checkpoint_path("last"))
    with pytest.raises(CheckpointError, match="no optimizer state"):
        resumed_race([Run(copy)], tiny_data)


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(finished_runs):
    _, runs = finished_runs
    ckpt = load_run_checkpoint(runs["resnet-8"], "last")
    ckpt["model_config"] = {**ckpt["model_config"], "depth": 14}
    with pytest.raises(CheckpointError, match="do not fit"):
        model_from_checkpoint(ckpt)


def test_store_lists_gets_and_deletes(finished_runs, tmp_path):
    root, runs = finished_runs
    store = RunStore(root)
    (root / "not-a-run").mkdir(exist_ok=True)
    assert sorted(r.run_id for r in store.list()) == sorted(r.run_id for r in runs.values())
    with pytest.raises(RunError):
        store.get("not-a-run")
    summary = runs["resnet-8"].summary()
    assert summary["model"] == "resnet-8" and summary["epochs_done"] == 4 and summary["status"] == "done"
    assert summary["best_test_error"] <= summary["final_test_error"]
    # delete a copy, not the shared fixture
    import shutil

    shutil.copytree(runs["plain-8"].path, tmp_path / "store" / runs["plain-8"].run_id)
    other = RunStore(tmp_path / "store")
    other.delete(runs["plain-8"].run_id)
    assert other.list() == []


def test_delete_stays_inside_the_runs_folder_and_leaves_links_alone(finished_runs, tmp_path):
    """A run id is a folder name, not a path: `../x` and links are refused,
    and what they point at stays."""
    _, runs = finished_runs
    import shutil

    outside = tmp_path / "outside-run"
    shutil.copytree(runs["plain-8"].path, outside)
    store = RunStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    with pytest.raises(RunError, match="not a run of"):
        store.delete("../outside-run")
    (tmp_path / "store" / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunError, match="a link"):
        store.delete("linked")
    assert (outside / "config.json").is_file() and (tmp_path / "store" / "linked").is_symlink()


def test_a_running_status_whose_process_is_gone_reads_interrupted(tmp_path):
    run = RunStore(tmp_path).create(ModelConfig(), TrainConfig(), {"source": "synthetic"})
    assert run.status()["status"] == "running"  # this process is alive
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = json.loads(run.status_path.read_text())
    record["pid"] = int(done.stdout)
    run.status_path.write_text(json.dumps(record))
    assert run.status()["status"] == "interrupted"
    with pytest.raises(RunError, match="still training"):
        RunStore(tmp_path).delete(RunStore(tmp_path).create(ModelConfig(), TrainConfig(), {}).run_id)


def test_a_running_status_whose_pid_now_belongs_to_another_process_reads_interrupted(tmp_path):
    """After a restart the recorded pid may be some other live process: the
    writer is known by pid and start time, so the run is not stuck as
    running (it resumes, and deletes)."""
    store = RunStore(tmp_path)
    run = store.create(ModelConfig(), TrainConfig(), {"source": "synthetic"})
    record = json.loads(run.status_path.read_text())
    assert record["pid"] == os.getpid() and run.status()["status"] == "running"
    run.status_path.write_text(json.dumps({**record, "started": record["started"] - 3600}))  # same pid, older process
    assert run.status()["status"] == "interrupted"
    run.status_path.write_text(json.dumps({**record, "pid": "not a number"}))
    assert run.status()["status"] == "interrupted"
    store.delete(run.run_id)
    assert store.list() == []


def test_torn_metric_lines_are_skipped(tmp_path):
    run = RunStore(tmp_path).create(ModelConfig(), TrainConfig(), {})
    run.append_metric({"kind": "train", "step": 5, "epoch": 1.0, "loss": 2.0, "error": 0.8, "lr": 0.1})
    with open(run.metrics_path, "a") as handle:
        handle.write('{"kind": "epoch", "ep')  # a writer killed mid-line
    assert [r["step"] for r in run.metrics()] == [5] and run.problems() == []


def _cli(*args):
    return [sys.executable, "-m", "resexplorer", *args]


def _child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _train_cli(runs, model: str, epochs: int) -> list[str]:
    """`train` of one small model on the synthetic set, on the CPU, into `runs`."""
    settings = ["--data", "synthetic", "--batch-size", "32", "--lr", "0.05", "--device", "cpu"]
    return _cli("train", "--model", model, "--epochs", str(epochs), *settings, "--runs", str(runs))


def _epochs_written(root: Path, model: str) -> int:
    for path in root.glob(f"*-{model}-*"):
        return len(Run(path).metrics("epoch"))
    return 0


@pytest.mark.slow
def test_kill_9_mid_epoch_leaves_a_run_that_loads_and_resumes_while_another_process_finishes(tmp_path):
    env = _child_env()
    victim = subprocess.Popen(
        _train_cli(tmp_path, "resnet-14", 12),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    neighbour = subprocess.Popen(
        _train_cli(tmp_path, "plain-8", 3),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 600
        while _epochs_written(tmp_path, "resnet-14") < 2 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # now somewhere inside a later epoch
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert neighbour.wait(600) == 0, neighbour.stderr.read()

    store = RunStore(tmp_path)
    by_model = {r.config()["model_name"]: r for r in store.list()}
    assert set(by_model) == {"resnet-14", "plain-8"}  # two processes, two intact runs
    assert by_model["plain-8"].status()["status"] == "done"
    killed = by_model["resnet-14"]
    assert killed.status()["status"] == "interrupted"
    epochs = [r["epoch"] for r in killed.metrics("epoch")]
    assert len(epochs) >= 2 and epochs == list(range(1, len(epochs) + 1))
    last = load_run_checkpoint(killed, "last")
    assert last["epoch"] == epochs[-1]  # an epoch counts once committed: metrics and checkpoint agree

    resumed = subprocess.run(
        _cli("resume", str(killed.path), "--data", "synthetic"), env=env, capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr
    assert killed.status()["status"] == "done"
    assert [r["epoch"] for r in killed.metrics("epoch")] == list(range(1, 13))


def test_a_runs_folder_given_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert RunStore("~/my-runs").root == tmp_path / "my-runs"
    assert JobManager("~/my-runs").runs_root == (tmp_path / "my-runs").resolve()
    assert not (tmp_path / "~").exists()


def test_a_checkpoint_whose_bytes_rotted_is_refused_not_loaded(finished_runs, tmp_path):
    """64 flipped bytes in the newest checkpoint once loaded silently and
    evaluated to a wrong error; every checkpoint now carries the SHA-256 of
    its contents."""
    import shutil

    _, runs = finished_runs
    copy = tmp_path / runs["resnet-8"].run_id
    shutil.copytree(runs["resnet-8"].path, copy)
    path = Run(copy).checkpoint_path("last")
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum"):
        load_run_checkpoint(Run(copy), "last")
    assert load_run_checkpoint(Run(copy), 2)["epoch"] == 2  # the other checkpoints are fine


def test_run_ids_and_created_read_one_clock_whatever_the_time_zone(tmp_path):
    """Made under a time zone 14 hours from UTC, a run's id still carries
    the UTC time its `created` says, so runs from anywhere sort as made."""
    script = (
        "import json, sys\n"
        "from resexplorer.nets.config import ModelConfig\n"
        "from resexplorer.runs.recipe import TrainConfig\n"
        "from resexplorer.runs.store import RunStore\n"
        "run = RunStore(sys.argv[1]).create(ModelConfig('resnet', 8), TrainConfig(epochs=1), {})\n"
        "print(json.dumps([run.run_id, run.config()['created']]))\n"
    )
    env = {**_child_env(), "TZ": "Pacific/Kiritimati"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    run_id, created = json.loads(done.stdout)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    assert created.endswith("+00:00") and run_id.startswith(stamp), (run_id, created)


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_sigterm_and_sighup_stop_training_as_ctrl_c_does(tmp_path, signame):
    """The system's or a closed terminal's request to end: the race stops at
    the next step, commits what it finished, marks the run cancelled with
    why, and exits, as for Ctrl+C; the run resumes."""
    env = _child_env()
    trainer = subprocess.Popen(
        _train_cli(tmp_path, "resnet-14", 40),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while _epochs_written(tmp_path, "resnet-14") < 1 and time.time() < deadline:
            time.sleep(0.1)
        trainer.send_signal(getattr(signal, signame))
        code = trainer.wait(60)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert code == 130, trainer.stderr.read()
    run = RunStore(tmp_path).list()[0]
    status = run.status()
    assert status["status"] == "cancelled" and signame in status["message"], status
    epochs = [r["epoch"] for r in run.metrics("epoch")]
    assert epochs and epochs[-1] < 40 and load_run_checkpoint(run, "last")["epoch"] == epochs[-1]


def test_a_dead_worker_reads_dead_even_as_a_zombie_no_one_reaped(tmp_path):
    """A process that has exited but was never waited for (its parent gone,
    no init to reap it) is not alive: its run reads interrupted, its job
    failed, and the runs folder takes another job."""
    from resexplorer.processes import process_of, start_time
    from resexplorer.training import jobs

    child = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for: a zombie once it exits
    started = start_time(child.pid)
    deadline = time.time() + 30
    while time.time() < deadline:
        with open(f"/proc/{child.pid}/stat") as handle:
            if handle.read().split(")")[-1].split()[0] == "Z":
                break
        time.sleep(0.05)
    else:
        raise AssertionError("the child never became a zombie")
    try:
        assert process_of(child.pid, started) is None
        run = RunStore(tmp_path / "runs").create(ModelConfig("resnet", 8), TrainConfig(epochs=1), {})
        record = json.loads(run.status_path.read_text())
        run.status_path.write_text(json.dumps({**record, "pid": child.pid, "started": started}))
        assert run.status()["status"] == "interrupted"
        job_dir = tmp_path / "runs" / jobs.JOBS_FOLDER / "20260101-000000-abcdef"
        job_dir.mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps({"pid": child.pid, "started": started}))
        (job_dir / "progress.json").write_text(json.dumps({"state": "running", "runs": {}}))
        assert jobs.Job(job_dir).status()["state"] == "failed"
        assert JobManager(tmp_path / "runs").active() is None
    finally:
        child.wait()


def test_a_config_is_read_once_per_version_of_its_file(tmp_path, monkeypatch):
    """The pages ask for every run's config at every rerun: it is read and
    checked once, and again only when the file changes."""
    from resexplorer.runs import store as store_module

    run = RunStore(tmp_path).create(ModelConfig(), TrainConfig(), {"source": "synthetic"})
    reads = []
    real = store_module.Run._read_config
    monkeypatch.setattr(store_module.Run, "_read_config", lambda self: reads.append(1) or real(self))
    first = run.config()
    read = len(reads)
    assert Run(run.path).config() == first and len(reads) == read  # another Run of the same folder: not read again
    first["model_name"] = "changed by a caller"
    assert run.config()["model_name"] != "changed by a caller"  # each caller has its own copy
    run.update_config({"note": "renamed"})
    assert run.config()["note"] == "renamed"  # rewritten: read afresh
    run.config_path.write_text("{ cut short", encoding="utf-8")
    with pytest.raises(RunDamaged):
        run.config()
