"""Background training jobs that the UI starts, watches and cancels.

A job is a worker process, `python -m resexplorer run-job DIR`, so training
never blocks the UI and never calls streamlit. Everything about a job lives
in files under `<runs>/.jobs/<job_id>/`:

    request.json    what was asked: train these models on this data with this
                    TrainConfig (as its own fields), or resume these runs
    job.json        the worker's pid, and when it started
    progress.json   written by the worker (atomically, a few times a second
                    at most): state, step, total, images/s, ETA, run folders,
                    and how it failed (a Failure record) when it did
    log.txt         the worker's output, with the traceback of a bug

so a job outlives reruns, page switches, refreshes and even a restart of the
app, and every browser tab sees the same job. One job holds the device at a
time: a second start while one runs raises JobBusy.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from enum import Enum
from pathlib import Path

from ..errors import BusyError
from ..processes import process_of, start_time
from ..runs.recipe import RunOptions, TrainConfig
from ..runs.store import RUN_FOLDER_REMEDY, RUNS_FOLDER_REMEDY, Run, id_stamp, utc_now
from ..storage import HeldLock, atomic_write_json, default_cache_dir, folder_in_use, writable_folder
from .failures import Failure, crashed

JOBS_FOLDER = ".jobs"
COMPILING = "compiling the training step (a minute or so, before the first step)"
MACHINE_LOCK = "training-job.lock"  # in the user cache: one app job per machine
CACHE_REMEDY = "set RESEXPLORER_CACHE to a folder you can write to (the machine's training lock lives there)"
REQUEST_FILE = "request.json"
CANCEL_FILE = "cancel"  # left by Job.cancel(); the worker checks it every step


class JobState(str, Enum):
    """What an app job is doing, as its progress.json says (str-valued: the
    file holds the word)."""

    STARTING = "starting"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    __str__ = str.__str__  # the word in messages, on every Python


FINAL_STATES = frozenset({JobState.DONE, JobState.CANCELLED, JobState.FAILED})  # a job in one of these is over
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Children of this process, so their exit is reaped and seen at once.
_CHILDREN: dict[int, subprocess.Popen] = {}


class JobBusy(BusyError):
    """A job already holds the device."""


def machine_claim() -> HeldLock:
    """The machine's device, held by one app job's worker at a time across
    runs folders (a lock in the user cache, freed when the worker ends or
    dies); JobBusy when another holds it, FolderError when the cache cannot
    hold the lock. (The command line's own train and resume do not take it:
    they train beside anything, as their user chose.)"""
    with folder_in_use(default_cache_dir(), "the user cache", CACHE_REMEDY):
        return HeldLock(
            default_cache_dir() / MACHINE_LOCK,
            lambda: JobBusy(
                "a training job started from another runs folder is using this machine; "
                "wait for it to end, or stop it from that folder's Train page"
            ),
        )


def _worker_running(pid: int, started: float | None) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it, so a finished child is not a zombie
    return process_of(pid, started) is not None  # by start time too: a reused pid is not the worker


# --- the UI side -------------------------------------------------------------------


class Job:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.job_id = self.path.name

    def _read(self, name: str) -> dict:
        """A job file's record; {} when missing or damaged (then the job's
        state comes from its worker's liveness, as for a crash)."""
        try:
            record = json.loads((self.path / name).read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
            return {}
        return record if isinstance(record, dict) else {}

    def info(self) -> dict:
        return self._read("job.json")

    def progress(self) -> dict:
        return self._read("progress.json")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.path / "log.txt").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def status(self) -> dict:
        """The progress record with a trustworthy 'state': a worker that died
        without finishing reads 'failed', with a 'crashed' Failure record."""
        progress = {
            "state": JobState.STARTING,
            "message": "starting the worker",
            "step": 0,
            "total_steps": 0,
            "runs": {},
            **self.progress(),
        }
        if progress["state"] in FINAL_STATES:
            return progress
        info = self.info()
        if info.get("pid") and _worker_running(info["pid"], info.get("started")):
            return progress
        if (self.path / CANCEL_FILE).exists():
            return {**progress, "state": JobState.CANCELLED, "message": "stopped before training began"}
        # Died before it could write its failure (killed, or at start-up): its
        # own last words, if any, are the best account there is.
        errors = [line for line in self.log_tail(50).splitlines() if line.startswith("error:")]
        failure = crashed(errors[-1][len("error:") :].strip() if errors else None)
        return {**progress, "state": JobState.FAILED, "message": failure.message, "failure": failure.to_dict()}

    def failure(self) -> Failure | None:
        """How the job failed, or None when it has not."""
        status = self.status()
        return Failure.from_dict(status.get("failure", {})) if status["state"] == JobState.FAILED else None

    @property
    def active(self) -> bool:
        return self.status()["state"] not in FINAL_STATES

    def runs(self) -> list[Run]:
        return [Run(path) for path in self.status().get("runs", {}).values() if Path(path).is_dir()]

    def cancel(self) -> None:
        """Ask the worker to stop; it does so within one step, keeping every
        completed epoch (the runs become 'cancelled' and resumable)."""
        (self.path / CANCEL_FILE).touch()
        info = self.info()
        if info.get("pid") and _worker_running(info["pid"], info.get("started")):
            os.kill(int(info["pid"]), signal.SIGINT)


class JobManager:
    """The jobs of one runs folder."""

    def __init__(self, runs_root: str | Path):
        self.runs_root = Path(runs_root).expanduser().resolve()
        self.root = self.runs_root / JOBS_FOLDER

    def jobs(self) -> list[Job]:
        if not self.root.is_dir():
            return []
        return [Job(p) for p in sorted(self.root.iterdir()) if (p / "job.json").is_file()]

    def active(self) -> Job | None:
        return next((job for job in reversed(self.jobs()) if job.active), None)

    def latest(self) -> Job | None:
        jobs = self.jobs()
        return jobs[-1] if jobs else None

    def start_training(
        self,
        models: list[str],
        data: str,
        config: TrainConfig,
        cache: str | None = None,
        options: RunOptions | None = None,
    ) -> Job:
        """Train these models in one race, a run each in this runs folder,
        run as `options` say (the defaults if not said)."""
        request = {
            "command": "train",
            "models": list(models),
            "train_config": config.to_dict(),
            "run_options": (options or RunOptions()).to_dict(),
        }
        return self._start({**request, "runs": str(self.runs_root), "data": data, "cache": cache})

    def start_resume(self, runs: list[Run], data: str, cache: str | None = None) -> Job:
        """Continue these runs from their last checkpoints."""
        for run in runs:  # said at Start, not by the worker a minute later
            writable_folder(run.path, "the run folder", RUN_FOLDER_REMEDY)
        return self._start({"command": "resume", "run_dirs": [str(r.path) for r in runs], "data": data, "cache": cache})

    def _start(self, request: dict) -> Job:
        writable_folder(self.runs_root, "the runs folder", RUNS_FOLDER_REMEDY)
        with folder_in_use(self.runs_root, "the runs folder", RUNS_FOLDER_REMEDY):
            self.root.mkdir(exist_ok=True)
        with HeldLock(self.root / "lock", wait=True):  # two tabs pressing Start at once: one wins
            busy = self.active()
            if busy is not None:
                raise JobBusy(
                    f"a training job ({busy.job_id}) is running; wait for it or stop it before starting another"
                )
            machine_claim().release()  # free now; the worker claims it for its life
            job_dir = self.root / f"{id_stamp()}-{secrets.token_hex(3)}"
            job_dir.mkdir()
            atomic_write_json(request, job_dir / REQUEST_FILE)
            command = [sys.executable, "-m", "resexplorer", "run-job", str(job_dir)]
            python_path = [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
            with open(job_dir / "log.txt", "wb") as log:
                child = subprocess.Popen(
                    command,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            _CHILDREN[child.pid] = child
            created = utc_now().isoformat(timespec="seconds")
            record = {"job_id": job_dir.name, "pid": child.pid, "started": start_time(child.pid), "created": created}
            atomic_write_json(record, job_dir / "job.json")
            return Job(job_dir)
