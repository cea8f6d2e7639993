"""Background training jobs that the UI starts, watches and cancels.

A job is a worker process, `python -m resexplorer run-job DIR`, so training
never blocks the UI and never calls streamlit. A Start queues the job
(queue.py): it waits its turn, first come first served, and the queue's
runner starts its worker when a device slot frees. Everything about a job
lives in files under `<runs>/.jobs/<job_id>/`:

    request.json    what was asked: train these models on this data with this
                    TrainConfig and RunOptions (as their own fields), or
                    resume these runs; and the page's estimate of its length
    job.json        when it was queued and its place's id in the queue; once
                    started, the worker's pid and when it started
    progress.json   written by the worker (atomically, a few times a second
                    at most): state, step, total, images/s, ETA, run folders,
                    and how it failed (a Failure record) when it did
    log.txt         the worker's output, with the traceback of a bug
    cancel          left by a Stop or by leaving the queue

so a job outlives reruns, page switches, refreshes and even a restart of the
app, and every browser tab sees the same job. One job holds a device slot
(the machine, or one GPU of several) at a time.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..errors import BusyError
from ..processes import interrupt, process_of, spawn_detached, start_time
from ..runs.recipe import RunOptions, TrainConfig
from ..runs.store import RUN_FOLDER_REMEDY, RUNS_FOLDER_REMEDY, Run, id_stamp, utc_now
from ..storage import CACHE_REMEDY, HeldLock, atomic_write_json, default_cache_dir, folder_in_use, writable_folder
from .failures import Failure, crashed, failure_of
from .queue import training_queue

JOBS_FOLDER = ".jobs"
COMPILING = "compiling the training step (a minute or so, before the first step)"
MACHINE_LOCK = "training-job{slot}.lock"  # in the user cache: one app job per device slot
SLOT_VARIABLE = "RESEXPLORER_JOB_SLOT"  # the GPU a queued job's worker was given, where there are several
REQUEST_FILE = "request.json"
CANCEL_FILE = "cancel"  # left by Job.cancel(); the worker checks it every step


class JobState(str, Enum):
    """What an app job is doing, as its progress.json says (str-valued: the
    file holds the word)."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    __str__ = str.__str__  # the word in messages, on every Python


FINAL_STATES = frozenset({JobState.DONE, JobState.CANCELLED, JobState.FAILED})  # a job in one of these is over
# Children of this process, so their exit is reaped and seen at once.
_CHILDREN: dict[int, subprocess.Popen] = {}


class JobBusy(BusyError):
    """A job already holds the device."""


def slot_free(slot: int | None) -> bool:
    """Whether no worker holds this device slot now (one started by an
    earlier runner may, after a runner was killed)."""
    try:
        machine_claim(slot).release()
    except BusyError:
        return False
    return True


def machine_claim(slot: int | None = None) -> HeldLock:
    """The job's device slot (the machine's device, or the GPU the queue
    gave it), held by one app job's worker at a time across runs folders (a
    lock in the user cache, freed when the worker ends or dies); JobBusy
    when another holds it, FolderError when the cache cannot hold the lock.
    (The command line's own train and resume do not take it: they train
    beside anything, as their user chose.)"""
    slot = os.environ.get(SLOT_VARIABLE, "") if slot is None else str(slot)
    with folder_in_use(default_cache_dir(), "the user cache", CACHE_REMEDY):
        return HeldLock(
            default_cache_dir() / MACHINE_LOCK.format(slot=f"-gpu{slot}" if slot else ""),
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
        if not info.get("pid") and info.get("task"):  # queued, not started yet
            return {**progress, "state": JobState.QUEUED, "message": "waiting in the training queue"}
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

    def request(self) -> dict:
        return self._read(REQUEST_FILE)

    def cancel(self) -> None:
        """Leave the queue, or ask the worker to stop: it does so within one
        step, keeping every completed epoch (the runs become 'cancelled' and
        resumable)."""
        (self.path / CANCEL_FILE).touch()  # first: the runner reads it before it starts a job
        info = self.info()
        if info.get("task") and not info.get("pid"):
            training_queue().leave(info["task"])
        if info.get("pid") and _worker_running(info["pid"], info.get("started")):
            interrupt(int(info["pid"]))


class JobManager:
    """The jobs of one runs folder."""

    def __init__(self, runs_root: str | Path):
        self.runs_root = Path(runs_root).expanduser().resolve()
        self.root = self.runs_root / JOBS_FOLDER

    def jobs(self) -> list[Job]:
        if not self.root.is_dir():
            return []
        return [Job(p) for p in sorted(self.root.iterdir()) if (p / "job.json").is_file()]

    def job(self, job_id: str) -> Job | None:
        """The job of this id (as a page's URL names it), or None: an id
        that is not a job of this folder, or not a plain name at all."""
        if not job_id or Path(job_id).name != job_id or job_id in (".", ".."):
            return None
        path = self.root / job_id
        return Job(path) if (path / "job.json").is_file() else None

    def active(self) -> Job | None:
        """The newest job that trains now (not one waiting in the queue)."""
        return next((job for job in reversed(self.started()) if job.active), None)

    def latest(self) -> Job | None:
        """The newest job that has started, running or ended."""
        started = self.started()
        return started[-1] if started else None

    def started(self) -> list[Job]:
        return [job for job in self.jobs() if job.info().get("pid") or job.progress()]

    def start_training(
        self,
        models: list[str],
        data: str,
        config: TrainConfig,
        cache: str | None = None,
        options: RunOptions | None = None,
        estimate_s: float | None = None,
    ) -> Job:
        """Queue the training of these models in one race, a run each in this
        runs folder, run as `options` say (the defaults if not said);
        `estimate_s`: how long it will take, as the page estimated it."""
        request = {
            "command": "train",
            "models": list(models),
            "train_config": config.to_dict(),
            "run_options": (options or RunOptions()).to_dict(),
        }
        return self._queue({**request, "runs": str(self.runs_root), "data": data, "cache": cache}, estimate_s)

    def start_resume(self, runs: list[Run], data: str, cache: str | None = None) -> Job:
        """Queue the continuation of these runs from their last checkpoints."""
        for run in runs:  # said at Start, not by the worker a minute later
            writable_folder(run.path, "the run folder", RUN_FOLDER_REMEDY)
        request = {"command": "resume", "run_dirs": [str(r.path) for r in runs], "data": data, "cache": cache}
        return self._queue(request, None)

    def _queue(self, request: dict, estimate_s: float | None) -> Job:
        writable_folder(self.runs_root, "the runs folder", RUNS_FOLDER_REMEDY)
        with folder_in_use(self.runs_root, "the runs folder", RUNS_FOLDER_REMEDY):
            self.root.mkdir(exist_ok=True)
        writable_folder(default_cache_dir(), "the user cache", CACHE_REMEDY)  # the queue and the machine's lock
        queue = training_queue()
        job_dir = self.root / f"{id_stamp()}-{secrets.token_hex(3)}"
        job_dir.mkdir()
        atomic_write_json({**request, "estimate_s": estimate_s}, job_dir / REQUEST_FILE)
        place = queue.place(job_dir)
        created = utc_now().isoformat(timespec="seconds")
        record = {"job_id": job_dir.name, "created": created, "queued": time.time(), "task": place.id}
        # job.json before the queue hears of it: the runner starts only a job whose folder is whole.
        atomic_write_json(record, job_dir / "job.json")
        queue.put(place)
        queue.ensure_runner()
        return Job(job_dir)


@dataclass(frozen=True)
class Standing:
    """Where a queued job stands: its place in line (1: next), the jobs
    ahead of it (queued and training), and when it should start, in seconds
    from now (None where a job ahead has no estimate)."""

    place: int
    waiting_ahead: int
    training: int
    starts_in_s: float | None


def queue_standing(job: Job) -> Standing | None:
    """The standing of a job still in the queue (None once it started or
    left), from the estimates its request and those ahead carry: what the
    jobs training now have left (their own ETA once they report one), then
    each queued job ahead on the first slot to free."""
    queue = training_queue()
    waiting = [Path(folder) for _, folder in queue.waiting()]
    if job.path not in waiting:
        return None
    ahead = waiting[: waiting.index(job.path)]
    # A slot's record outlives a runner killed mid-job: only jobs still training count.
    training = [j for j in (Job(Path(folder)) for folder in queue.running()) if j.active]
    free_at = [_time_left(j) for j in training] + [0.0] * max(0, queue.slots() - len(training))
    for waiting_job in ahead:
        length = Job(waiting_job).request().get("estimate_s")
        first = free_at.index(min(free_at, key=lambda t: float("inf") if t is None else t))
        free_at[first] = None if free_at[first] is None or length is None else free_at[first] + length
    starts_in = None if None in free_at else min(free_at)
    return Standing(len(ahead) + 1, len(ahead), len(training), starts_in)


def _time_left(job: Job) -> float | None:
    """Seconds a training job has left: its own ETA, else its estimate less
    the time it has run."""
    progress = job.progress()
    if progress.get("eta_s") is not None:
        return float(progress["eta_s"])
    estimate, started = job.request().get("estimate_s"), job.info().get("started")
    if estimate is None or started is None:
        return None
    return max(0.0, float(estimate) - (time.time() - float(started)))


def launch_worker(job_dir: Path, slot: int | None) -> subprocess.Popen | None:
    """Start a queued job's worker (the queue's runner calls this when a
    device slot is free; `slot`: the GPU it gets where there are several).
    None when the job left the queue or its folder is gone; a worker that
    cannot be started leaves its failure in progress.json."""
    job = Job(job_dir)
    try:
        while not slot_free(slot):  # a worker an earlier runner started still trains there
            if (job_dir / CANCEL_FILE).exists():
                break
            time.sleep(1.0)
        if (job_dir / CANCEL_FILE).exists() or not (job_dir / "job.json").is_file():
            return None
        env = {} if slot is None else {SLOT_VARIABLE: str(slot), "CUDA_VISIBLE_DEVICES": str(slot)}
        child = spawn_detached([sys.executable, "-m", "resexplorer", "run-job", str(job_dir)], job_dir / "log.txt", env)
    except Exception as err:  # a full disk, a vanished folder: said on the job, and the queue goes on
        failure = failure_of(err)
        record = {"state": JobState.FAILED, "message": failure.message, "failure": failure.to_dict()}
        atomic_write_json(record, job_dir / "progress.json")
        return None
    _CHILDREN[child.pid] = child
    atomic_write_json({**job.info(), "pid": child.pid, "started": start_time(child.pid)}, job_dir / "job.json")
    return child
