"""The training queue (resexplorer/training/queue.py): a Start while the
machine is busy queues the job, first come first served; the queue's own
runner process starts each job when the machine frees, with no page open;
a job can leave the queue; a killed runner is replaced and loses nothing."""

import json
import time
from pathlib import Path

import psutil
import pytest
from helpers import ON_CPU

from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.training import jobs, queue
from resexplorer.training.jobs import FINAL_STATES, Job, JobManager, JobState, machine_claim, queue_standing
from resexplorer.training.queue import RUNNING_FOLDER, training_queue

TINY = TrainConfig(epochs=1, batch_size=32, train_subset=64, test_subset=32)


def _start(manager: JobManager, estimate_s: float | None = 60.0) -> Job:
    return manager.start_training(["resnet-8"], "synthetic", TINY, options=ON_CPU, estimate_s=estimate_s)


def _until(condition, seconds: float = 120) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _runners() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "run-queue" in (process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture()
def no_runner(monkeypatch):
    """Jobs are queued but nothing takes them: the queue as it stands."""
    monkeypatch.setattr(queue.TrainingQueue, "ensure_runner", lambda self: None)


def test_a_queued_job_knows_its_place_and_when_it_should_start(tmp_path, no_runner):
    manager = JobManager(tmp_path / "runs")
    first, second, third = _start(manager, 100.0), _start(manager, None), _start(manager, 50.0)
    assert [str(j.status()["state"]) for j in (first, second, third)] == ["queued"] * 3
    assert manager.latest() is None and manager.active() is None  # nothing has started
    # One job trains now, with 30 s left by its own report.
    training = _start(manager)
    training_queue().leave(json.loads((training.path / "job.json").read_text())["task"])
    (training.path / "progress.json").write_text(json.dumps({"state": "running", "eta_s": 30.0}))
    slots = training_queue().cache / RUNNING_FOLDER
    slots.mkdir(exist_ok=True)
    (slots / "slot-0.json").write_text(json.dumps({"job": str(training.path)}))

    standing = queue_standing(first)
    assert (standing.place, standing.waiting_ahead, standing.training) == (1, 0, 1)
    assert standing.starts_in_s == pytest.approx(30.0)
    assert queue_standing(second).starts_in_s == pytest.approx(130.0)  # behind the first's 100 s
    assert queue_standing(third).starts_in_s is None  # the second has no estimate
    second.cancel()  # leaves the queue: those behind move up
    assert second.status()["state"] == JobState.CANCELLED and not second.active
    assert queue_standing(second) is None
    assert (queue_standing(third).place, queue_standing(third).starts_in_s) == (2, pytest.approx(130.0))


def test_a_job_id_from_a_url_names_a_job_of_this_folder_or_nothing(tmp_path, no_runner):
    manager = JobManager(tmp_path / "runs")
    job = _start(manager)
    assert manager.job(job.job_id).path == job.path
    for bad in ("", "..", "../x", "/etc", "nope", f"{job.job_id}/../..", "."):
        assert manager.job(bad) is None, bad


@pytest.mark.slow
def test_queued_jobs_start_in_order_when_the_machine_frees_and_one_that_left_never_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(queue, "IDLE_EXIT_S", 3.0)  # the runner it starts ends sooner once the queue is empty
    manager = JobManager(tmp_path / "runs")
    with machine_claim():  # a job of another runs folder holds the machine
        first, second, third = _start(manager), _start(manager), _start(manager)
        assert _until(lambda: _runners() != [], 30)  # the runner came up by itself
        time.sleep(3)
        assert [str(j.status()["state"]) for j in (first, second, third)] == ["queued"] * 3
        second.cancel()
        assert third.status()["state"] == "queued"
    assert _until(lambda: all(j.status()["state"] in FINAL_STATES for j in (first, third)), 240)
    assert [str(j.status()["state"]) for j in (first, second, third)] == ["done", "cancelled", "done"]
    assert not (second.path / "progress.json").exists()  # it never trained
    first_ended = first.progress()["updated"]
    assert third.info()["started"] >= first_ended - 1  # one after the other, first come first served
    runs = RunStore(tmp_path / "runs").list()
    assert len(runs) == 2 and all(r.status()["status"] == "done" for r in runs)
    assert _until(lambda: not _runners(), 30)  # an empty queue ends the runner


@pytest.mark.slow
def test_a_killed_runner_is_replaced_and_its_queued_job_still_runs(tmp_path):
    manager = JobManager(tmp_path / "runs")
    with machine_claim():
        job = _start(manager)
        assert _until(lambda: _runners() != [], 30)
        for runner in _runners():
            runner.kill()
        assert _until(lambda: not training_queue().runner_alive(), 10)
        assert job.status()["state"] == JobState.QUEUED  # still in the queue's file
        training_queue().ensure_runner()  # what the Train page does when it shows a queued job
    assert _until(lambda: job.status()["state"] in FINAL_STATES, 240)
    assert job.status()["state"] == JobState.DONE


def test_a_job_that_cannot_start_fails_with_its_reason_and_frees_the_queue(tmp_path, no_runner, monkeypatch):
    manager = JobManager(tmp_path / "runs")
    job = _start(manager)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs, "spawn_detached", no_space)
    assert jobs.launch_worker(job.path, None) is None
    status = job.status()
    assert status["state"] == JobState.FAILED and "No space left" in status["message"]
    assert not job.active


def test_the_runner_runs_nothing_for_a_job_that_left(tmp_path, no_runner):
    manager = JobManager(tmp_path / "runs")
    job = _start(manager)
    job.cancel()
    assert jobs.launch_worker(Path(job.path), None) is None
    assert "pid" not in job.info() and job.status()["state"] == JobState.CANCELLED
