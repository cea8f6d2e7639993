"""The worker side of an app job (training/jobs.py): the engine callback
that keeps the job's progress.json current for the pages, in the worker
process (`python -m resexplorer run-job DIR`). Kept apart from jobs.py so
the pages that start and watch jobs load no training engine and no torch."""

from __future__ import annotations

import time
from pathlib import Path

from ..runs.store import Run
from ..storage import atomic_write_json
from .engine import Callback, EpochEvent, Member, Race, StepEvent, device_of
from .failures import Failure
from .jobs import COMPILING, JobState


class ProgressWriter(Callback):
    """Runs inside the worker: keeps progress.json current for the UI."""

    MIN_INTERVAL_S = 0.5

    def __init__(self, job_dir: str | Path):
        self.path = Path(job_dir) / "progress.json"
        self.state: dict = {
            "state": JobState.STARTING,
            "message": "loading the data set",
            "step": 0,
            "total_steps": 0,
            "runs": {},
            "statuses": {},
        }
        self._last_write = 0.0
        self._started = time.time()
        self._first_step: int | None = None
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_write >= self.MIN_INTERVAL_S:
            self.state["updated"] = now
            atomic_write_json(self.state, self.path)
            self._last_write = now

    def set_runs(self, runs: dict[str, Run]) -> None:
        self.state["runs"] = {name: str(run.path) for name, run in runs.items()}
        self._write(force=True)

    def loading(self, done: int, total: int, what: str) -> None:
        """The data set's first decode reports here."""
        self.state["message"] = f"{what} {done}/{total}"
        self._write()

    def on_race_start(self, race: Race) -> None:
        self._started = time.time()
        self._first_step = race.start_step
        self.state.update(
            state=JobState.RUNNING,
            message=COMPILING if race.compiled else "training",
            step=self._first_step,
            total_steps=race.total_steps,
            images_per_step=race.config.batch_size * len(race.members),
            devices={member.name: str(device_of(member)) for member in race.members},  # which model ran where
        )
        self._write(force=True)

    def _progress(self, step: int) -> None:
        self.state["step"], self.state["message"] = step, "training"
        done = step - (self._first_step or 0)
        elapsed = time.time() - self._started
        if done > 0 and elapsed > 0:
            rate = done / elapsed  # steps per second
            self.state["images_per_s"] = rate * self.state.get("images_per_step", 0)
            self.state["eta_s"] = (self.state["total_steps"] - step) / rate
        self._write()

    def on_step(self, member: Member, event: StepEvent) -> None:
        self._progress(member.step)

    def on_epoch_end(self, member: Member, event: EpochEvent) -> None:
        self._progress(member.step)

    def on_end(self, member: Member) -> None:
        self.state["statuses"][member.name] = {"status": member.status, "message": member.message}
        self._write(force=True)

    def finish(self, state: JobState) -> None:
        """The job ended: done, or cancelled (its runs resumable)."""
        self.state.update(state=state, message="", eta_s=0)
        self._write(force=True)

    def fail(self, failure: Failure) -> None:
        self.state.update(state=JobState.FAILED, message=failure.message, failure=failure.to_dict(), eta_s=0)
        self._write(force=True)
