"""The training queue: app jobs wait their turn, first come first served,
in a queue that outlives the app.

A Start on the Train or Runs page puts the job in the queue (jobs.py writes
its folder first); a queue runner, `python -m resexplorer run-queue`, takes
the jobs in order and runs each in its own worker process, one job per
device slot: one per GPU where there are several, else one for the
machine. The runner is a process of its own, started by whoever queues a
job while none is running, so a queued job starts when the machine frees
with no browser open, and survives a refresh, a page switch and a restart
of the app. It ends itself once the queue has been empty for a while.

The queue is huey's SqliteHuey (a small, well-kept task queue whose SQLite
storage needs no server), kept in the user cache: every runs folder of the
machine shares it, as they share the machine. Leaving the queue revokes the
job's task; a job is also told by a file in its folder (jobs.CANCEL_FILE),
which the runner reads before it starts one, so a job left while the
runner was taking it still never trains.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from huey import SqliteHuey

from ..errors import BusyError
from ..processes import spawn_detached
from ..storage import CACHE_REMEDY, HeldLock, atomic_write_json, default_cache_dir, folder_in_use

QUEUE_FILE = "training-queue.sqlite3"  # in the user cache
RUNNER_LOCK = "training-queue-runner.lock"  # held by the one live runner
RUNNER_LOG = "training-queue-runner.log"
RUNNING_FOLDER = "training-slots"  # slot-N.json: the job a slot runs now
SLOTS_FILE = "count.json"  # how many slots the last runner had
IDLE_EXIT_S = 30.0  # an empty queue for this long ends the runner
POLL_S = 0.5  # how often the runner looks for work, at most
# Starts a job's worker: (job folder, its GPU or None) -> the worker process,
# or None when the job is not to run (it left the queue).
Launch = Callable[[Path, "int | None"], "subprocess.Popen | None"]


def _slot_count() -> int:
    """Device slots: one per visible GPU where there are several, else one.
    The runner asks torch (once, at its start) only where an NVIDIA driver
    is installed: elsewhere it would load torch to hear "one"."""
    if shutil.which("nvidia-smi") is None and not Path("/proc/driver/nvidia").exists():
        return 1
    try:
        import torch

        return max(1, torch.cuda.device_count())
    except Exception:  # no torch, or a broken CUDA: the machine is one slot
        return 1


def training_queue() -> TrainingQueue:
    """The queue of this machine's user cache, one per process: pages ask
    for it every refresh, and opening it runs its schema's statements."""
    return _queue_in(str(default_cache_dir()))


@functools.lru_cache(maxsize=8)
def _queue_in(cache: str) -> TrainingQueue:
    return TrainingQueue(Path(cache))


class TrainingQueue:
    """The queue of app jobs (their folders) in this user cache, in order."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        with folder_in_use(self.cache, "the user cache", CACHE_REMEDY):
            self.cache.mkdir(parents=True, exist_ok=True)
        self.huey = SqliteHuey("resexplorer", filename=str(self.cache / QUEUE_FILE), results=False, timeout=30)
        self.run_job = self.huey.task(name="run_job")(_run_job)

    # --- the app's side -------------------------------------------------------

    def place(self, job_dir: Path):
        """The job's place in the queue, not taken yet: its `.id` can be
        written beside the job before put() makes it visible to the runner."""
        return self.run_job.s(str(job_dir))

    def put(self, place) -> None:
        self.huey.enqueue(place)

    def waiting(self) -> list[tuple[str, str]]:
        """(task id, job folder) of every job still waiting, first first."""
        return [
            (task.id, task.args[0])
            for task in self.huey.pending()
            if task.name == "run_job" and not self.huey.is_revoked(task)
        ]

    def leave(self, task_id: str) -> None:
        """Take a waiting job out of the queue (no effect once it started)."""
        self.huey.revoke_by_id(task_id)

    def running(self) -> list[str]:
        """The job folders the runner's slots run now."""
        found = []
        for path in sorted((self.cache / RUNNING_FOLDER).glob("slot-*.json")):
            try:
                found.append(str(json.loads(path.read_text(encoding="utf-8"))["job"]))
            except (OSError, ValueError, KeyError, TypeError, RecursionError):
                continue  # half-written or damaged: the slot is said free
        return found

    def _runner_lock(self) -> HeldLock:
        return HeldLock(self.cache / RUNNER_LOCK, lambda: BusyError("a queue runner is running"))

    def slots(self) -> int:
        """How many jobs run at once (as the last runner found: 1 before any)."""
        try:
            return max(1, int(json.loads((self.cache / RUNNING_FOLDER / SLOTS_FILE).read_text())["slots"]))
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return 1

    def runner_alive(self) -> bool:
        try:
            self._runner_lock().release()
        except BusyError:
            return True
        return False

    def ensure_runner(self) -> None:
        """Start a runner unless one is running: after a job is queued, and
        whenever a page sees jobs waiting (a runner that was killed, or a
        machine restarted with jobs in the queue)."""
        if self.runner_alive():
            return
        command = [sys.executable, "-m", "resexplorer", "run-queue", "--idle-exit", str(IDLE_EXIT_S)]
        spawn_detached(command, self.cache / RUNNER_LOG, {"RESEXPLORER_CACHE": str(self.cache)})

    # --- the runner's side ------------------------------------------------------

    def run(self, launch: Launch, idle_exit_s: float = IDLE_EXIT_S, slots: int | None = None) -> None:
        """Run the queue's jobs until it has been empty for `idle_exit_s`,
        each by `launch(job folder, slot)` (jobs.launch_worker: the queue
        knows job folders, not what is in them). Returns at once if another
        runner holds the queue."""
        try:
            lock = self._runner_lock()
        except BusyError:
            return
        try:
            slots = slots or _slot_count()
            _SLOTS.reset(slots, launch)
            (self.cache / RUNNING_FOLDER).mkdir(exist_ok=True)
            atomic_write_json({"slots": slots}, self.cache / RUNNING_FOLDER / SLOTS_FILE)
            while True:
                self._consume(slots, idle_exit_s)
                if not self.waiting():  # nothing queued as the consumer stopped: done
                    break
        finally:
            lock.release()

    def _consume(self, slots: int, idle_exit_s: float) -> None:
        consumer = self.huey.create_consumer(
            workers=slots, worker_type="thread", periodic=False, max_delay=POLL_S, check_worker_health=True
        )
        consumer.start()
        idle_since = time.monotonic()
        try:
            while True:
                time.sleep(POLL_S)
                if self.huey.pending_count() or _SLOTS.busy():
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= idle_exit_s:
                    break
        finally:
            consumer.stop(graceful=True)


class _Slots:
    """Which device slots this runner's jobs hold (one worker thread each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] = [0]
        self._count = 1
        self.launch: Launch | None = None

    def reset(self, count: int, launch: Launch) -> None:
        with self._lock:
            self._count, self._free, self.launch = count, list(range(count)), launch

    def take(self) -> int:
        with self._lock:
            return self._free.pop(0)  # huey runs one task per worker thread, and there are as many as slots

    def give(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)
            self._free.sort()

    def busy(self) -> bool:
        with self._lock:
            return len(self._free) < self._count

    @property
    def count(self) -> int:
        return self._count


_SLOTS = _Slots()


def _run_job(job_dir: str) -> None:
    """The queue's task, in a runner's worker thread: start the job's worker
    on a free slot and wait for it to end (a failed or cancelled job ends
    too, so the queue moves on)."""
    slot = _SLOTS.take()
    try:
        _running(slot, job_dir)  # first: the job is out of the queue, and may wait here for its device
        child = _SLOTS.launch(Path(job_dir), slot if _SLOTS.count > 1 else None)
        if child is not None:
            child.wait()
    finally:
        _running(slot, None)
        _SLOTS.give(slot)


def _running(slot: int, job_dir: str | None) -> None:
    """Say which job holds the slot (None: free), for the pages' estimates."""
    path = default_cache_dir() / RUNNING_FOLDER / f"slot-{slot}.json"
    if job_dir is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json({"job": job_dir, "since": time.time()}, path)
