import json
import subprocess
import sys
import time
from pathlib import Path

from resexplorer.training.jobs import CANCEL_FILE, Job, JobManager, ProgressWriter


def _fake_job(root, pid, progress=None, log=""):
    path = root / ".jobs" / "20260101-000000-abcdef"
    path.mkdir(parents=True)
    (path / "job.json").write_text(json.dumps({"job_id": path.name, "pid": pid, "args": []}))
    if progress is not None:
        (path / "progress.json").write_text(json.dumps(progress))
    (path / "log.txt").write_text(log)
    return Job(path)


def _dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_worker_that_died_reads_failed_with_its_last_error_line(tmp_path):
    job = _fake_job(tmp_path, _dead_pid(), {"state": "running", "step": 3, "total_steps": 10}, log="loading\nerror: Could not get CIFAR-10 (URLError)\n")
    status = job.status()
    assert status["state"] == "failed" and "Could not get CIFAR-10" in status["message"]
    assert not job.active and JobManager(tmp_path).active() is None


def test_a_worker_killed_without_a_word_still_reads_failed_and_resumable(tmp_path):
    status = _fake_job(tmp_path, _dead_pid(), {"state": "running"}).status()
    assert status["state"] == "failed" and "resumed" in status["message"]


def test_a_cancel_left_before_the_worker_began_reads_cancelled(tmp_path):
    job = _fake_job(tmp_path, _dead_pid(), {"state": "starting"})
    job.cancel()
    assert (job.path / CANCEL_FILE).exists() and job.status()["state"] == "cancelled"


def test_a_finished_job_keeps_its_final_state(tmp_path):
    job = _fake_job(tmp_path, _dead_pid(), {"state": "done", "step": 10, "total_steps": 10})
    assert job.status()["state"] == "done"


def test_a_live_job_is_active_and_blocks_another(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)  # resexplorer"])
    deadline = time.time() + 20
    while b"resexplorer" not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes() and time.time() < deadline:
        time.sleep(0.05)  # until the child has exec'd: before that it shows pytest's command line
    try:
        _fake_job(tmp_path, sleeper.pid, {"state": "running"})
        manager = JobManager(tmp_path)
        assert manager.active() is not None
        try:
            manager.start_training(["resnet-8"], "synthetic", {"epochs": 1})
            raise AssertionError("a second job started")
        except Exception as err:
            assert "is running" in str(err)
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
