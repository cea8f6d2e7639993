import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import ON_CPU

from resexplorer.cli import main
from resexplorer.errors import CheckpointError, ConfigError, DataError
from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.training.failures import Failure, failure_of
from resexplorer.training.job_progress import ProgressWriter
from resexplorer.training.jobs import CANCEL_FILE, REQUEST_FILE, Job, JobManager, machine_claim
from resexplorer.training.queue import TrainingQueue, training_queue


def _fake_job(root, pid, progress=None, log=""):
    path = root / ".jobs" / "20260101-000000-abcdef"
    path.mkdir(parents=True)
    (path / "job.json").write_text(json.dumps({"job_id": path.name, "pid": pid}))
    if progress is not None:
        (path / "progress.json").write_text(json.dumps(progress))
    (path / "log.txt").write_text(log)
    return Job(path)


def _dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_worker_that_died_reads_failed_with_its_last_error_line(tmp_path):
    log = "loading\nerror: Could not get CIFAR-10 (URLError)\n"
    job = _fake_job(tmp_path, _dead_pid(), {"state": "running", "step": 3, "total_steps": 10}, log=log)
    failure = job.failure()
    assert job.status()["state"] == "failed" and failure.kind == "crashed"
    assert failure.message == "Could not get CIFAR-10 (URLError)"
    assert not job.active and JobManager(tmp_path).active() is None


def test_a_worker_killed_without_a_word_still_reads_failed_and_resumable(tmp_path):
    failure = _fake_job(tmp_path, _dead_pid(), {"state": "running"}).failure()
    assert failure.kind == "crashed" and "resume" in failure.what_to_do


def test_a_running_or_finished_job_has_no_failure(tmp_path):
    assert _fake_job(tmp_path, _dead_pid(), {"state": "done"}).failure() is None


def _run_job(tmp_path, request: dict) -> dict:
    """The worker in this process: what `run-job` leaves in progress.json."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / REQUEST_FILE).write_text(json.dumps(request))
    main(["run-job", str(job_dir)])
    return json.loads((job_dir / "progress.json").read_text())


def test_the_worker_trains_on_the_config_the_request_hands_it(tmp_path):
    config = TrainConfig(epochs=1, batch_size=16, lr=0.05, momentum=0.5, seed=3, augment=False)
    options = RunOptions(device="cpu", log_every=2)
    request = {
        "command": "train",
        "models": ["resnet-8"],
        "train_config": config.to_dict(),
        "run_options": options.to_dict(),
        "data": "synthetic",
    }
    progress = _run_job(tmp_path, {**request, "runs": str(tmp_path / "runs")})
    assert progress["state"] == "done"
    (run,) = RunStore(tmp_path / "runs").list()
    assert run.train_config() == config  # every field, not only those a flag would carry
    assert run.run_options() == options  # and how it was to run, kept apart from the recipe


def test_a_request_from_before_run_options_runs_as_its_train_config_says(tmp_path):
    """A job queued by an older version holds device and log_every inside
    train_config: the worker still runs it that way."""
    old = {**TrainConfig(epochs=1, batch_size=16, train_subset=64).to_dict(), "device": "cpu", "log_every": 2}
    request = {"command": "train", "models": ["resnet-8"], "train_config": old, "data": "synthetic"}
    assert _run_job(tmp_path, {**request, "runs": str(tmp_path / "runs")})["state"] == "done"
    (run,) = RunStore(tmp_path / "runs").list()
    assert run.run_options() == RunOptions(device="cpu", log_every=2)
    assert run.train_config() == TrainConfig(epochs=1, batch_size=16, train_subset=64)


def test_a_worker_that_fails_reports_a_failure_record(tmp_path):
    request = {"command": "train", "models": ["resnet-8"], "train_config": TrainConfig(epochs=1).to_dict()}
    progress = _run_job(tmp_path, {**request, "data": str(tmp_path / "no-such-folder"), "runs": str(tmp_path)})
    assert progress["state"] == "failed"
    failure = Failure.from_dict(progress["failure"])
    assert failure.kind == "data" and "no-such-folder" in failure.message and "data source" in failure.what_to_do


def test_failures_say_their_kind_and_what_to_do():
    assert failure_of(DataError("offline")).kind == "data"
    memory = failure_of(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore"))
    assert memory.kind == "memory" and "batch size" in memory.what_to_do and "more" not in memory.message
    assert failure_of(ConfigError("epochs must be >= 1")).kind == "settings"
    assert failure_of(CheckpointError("damaged")).kind == "checkpoint"
    bug = failure_of(KeyError("x"))
    assert bug.kind == "bug" and bug.message.startswith("KeyError") and "log" in bug.what_to_do
    assert Failure.from_dict(bug.to_dict()) == bug


def test_a_cancel_left_before_the_worker_began_reads_cancelled(tmp_path):
    job = _fake_job(tmp_path, _dead_pid(), {"state": "starting"})
    job.cancel()
    assert (job.path / CANCEL_FILE).exists() and job.status()["state"] == "cancelled"


def test_a_finished_job_keeps_its_final_state(tmp_path):
    job = _fake_job(tmp_path, _dead_pid(), {"state": "done", "step": 10, "total_steps": 10})
    assert job.status()["state"] == "done"


def test_a_live_job_is_active_and_a_start_beside_it_is_queued(tmp_path, monkeypatch):
    monkeypatch.setattr(TrainingQueue, "ensure_runner", lambda self: None)  # the queue as it stands
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)  # resexplorer"])
    deadline = time.time() + 20
    while b"resexplorer" not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes() and time.time() < deadline:
        time.sleep(0.05)  # until the child has exec'd: before that it shows pytest's command line
    try:
        _fake_job(tmp_path, sleeper.pid, {"state": "running"})
        manager = JobManager(tmp_path)
        assert manager.active() is not None
        second = manager.start_training(["resnet-8"], "synthetic", TrainConfig(epochs=1))
        assert second.status()["state"] == "queued" and second.active
        assert manager.active().job_id != second.job_id  # the active job is the one training
    finally:
        sleeper.kill()
        sleeper.wait()


def test_progress_writer_reports_loading_running_and_the_end(tmp_path):
    writer = ProgressWriter(tmp_path)
    assert json.loads((tmp_path / "progress.json").read_text())["state"] == "starting"
    writer.loading(10, 100, "decoding train/")
    writer.finish("done")
    final = json.loads((tmp_path / "progress.json").read_text())
    assert final["state"] == "done" and final["eta_s"] == 0


def test_one_job_per_machine_even_from_another_runs_folder(tmp_path, monkeypatch):
    """The device is the machine's, not a runs folder's: while a job of any
    folder holds it, a start from another folder waits in the one queue,
    and a worker that finds it held reports a 'busy' failure."""
    monkeypatch.setenv("RESEXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(TrainingQueue, "ensure_runner", lambda self: None)
    with machine_claim():  # another folder's worker, training
        waiting = JobManager(tmp_path / "b").start_training(["resnet-8"], "synthetic", TrainConfig(epochs=1))
        assert waiting.status()["state"] == "queued"
        assert [Path(folder) for _, folder in training_queue().waiting()] == [waiting.path]
        request = {"command": "train", "models": ["resnet-8"], "train_config": TrainConfig(epochs=1).to_dict()}
        progress = _run_job(tmp_path, {**request, "data": "synthetic", "runs": str(tmp_path / "runs")})
    assert progress["state"] == "failed" and progress["failure"]["kind"] == "busy"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    with machine_claim():  # and free again afterwards
        pass


def test_a_job_whose_pid_now_belongs_to_another_process_reads_failed(tmp_path):
    """The worker is known by pid and start time: a live process under the
    recorded pid, even one whose command line names resexplorer, started at
    another time is not the worker (a pid reused after a restart)."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "resexplorer"])
    try:
        job = _fake_job(tmp_path, other.pid, {"state": "running"})
        started = psutil.Process(other.pid).create_time()
        info = json.loads((job.path / "job.json").read_text())
        (job.path / "job.json").write_text(json.dumps({**info, "started": started}))
        assert job.status()["state"] == "running"  # the worker itself
        (job.path / "job.json").write_text(json.dumps({**info, "started": started - 3600}))
        assert job.status()["state"] == "failed" and job.failure().kind == "crashed"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("damage", [b"[1, 2]", b"\xff\xfe{", b'{"state": "runn'])
def test_a_damaged_progress_file_reads_as_its_worker_stands(tmp_path, damage):
    """A progress.json that is not UTF-8, not JSON or not an object once
    raised on every page that watches jobs; a dead worker's job reads failed."""
    job = _fake_job(tmp_path, _dead_pid(), {"state": "running"})
    (job.path / "progress.json").write_bytes(damage)
    assert job.status()["state"] == "failed" and job.failure().kind == "crashed"


def test_the_job_record_says_where_each_model_trains(tmp_path, tiny_data):
    from resexplorer.nets.config import ModelConfig
    from resexplorer.training.launch import new_race

    writer = ProgressWriter(tmp_path / "job")
    models = [ModelConfig("plain", 8, num_classes=4), ModelConfig("resnet", 8, num_classes=4)]
    config = TrainConfig(epochs=1, batch_size=32, train_subset=64)
    race, _ = new_race(models, tiny_data, config, tmp_path / "runs", [writer], probes=[], options=ON_CPU)
    race.run()
    assert json.loads((tmp_path / "job" / "progress.json").read_text())["devices"] == {
        "plain-8": "cpu",
        "resnet-8": "cpu",
    }


def test_auto_spreads_a_race_over_the_gpus_there_are(monkeypatch):
    import torch

    from resexplorer.system import race_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert race_devices("auto", 2) == [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert race_devices("auto", 5) == [torch.device("cuda", i) for i in range(3)]  # models share GPUs round the race
    assert race_devices("auto", 1) == [torch.device("cuda")]  # one model: one GPU
    assert race_devices("cpu", 2) == [torch.device("cpu")]
