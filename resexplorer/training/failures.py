"""Why a job or a model stopped, as a record a page or a terminal can show
without parsing text: its kind, the message, and what the user can do."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

from ..errors import BusyError, CheckpointError, ConfigError, DataError, DiskFullError, RunError

RESUME_HINT = "the last completed epoch of each run is kept: resume it from the Runs page or with `resume`"


@dataclass(frozen=True)
class Failure:
    kind: str  # data | memory | disk | settings | checkpoint | run | busy | crashed | bug
    message: str
    what_to_do: str

    def __str__(self) -> str:
        return f"{self.message}; {self.what_to_do}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Failure:
        return cls(str(data.get("kind", "bug")), str(data.get("message", "")), str(data.get("what_to_do", "")))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else repr(err)


def _out_of_memory(err: BaseException) -> bool:
    # An error torch raised means torch is loaded; the UI side reads
    # failures without loading it.
    torch = sys.modules.get("torch")
    return (torch is not None and isinstance(err, torch.cuda.OutOfMemoryError)) or "out of memory" in str(err).lower()


def failure_of(err: BaseException) -> Failure:
    """The record of an exception; the kinds a user can fix say how."""
    if isinstance(err, DiskFullError):
        return Failure("disk", str(err), "free some space and resume: every completed epoch is kept")
    if isinstance(err, BusyError):
        return Failure("busy", str(err), "start it again when the other job has ended")
    if isinstance(err, DataError):
        return Failure(
            "data",
            str(err),
            "choose another data source: an image folder with train/ and test/ class folders, "
            "or a CIFAR-10 copy where the message says",
        )
    if _out_of_memory(err):
        return Failure("memory", f"out of memory ({_first_line(err)})", "use a smaller batch size or fewer models")
    if isinstance(err, ConfigError):
        return Failure("settings", str(err), "change the setting the message names")
    if isinstance(err, CheckpointError):
        return Failure("checkpoint", str(err), "pick another run or checkpoint")
    if isinstance(err, RunError):
        return Failure("run", str(err), "check the runs folder")
    return Failure("bug", f"{type(err).__name__}: {err}", "this is a bug: the job's log.txt has the traceback")


def crashed(last_error: str | None) -> Failure:
    """A worker that ended without reporting how (killed, or dead at start)."""
    return Failure("crashed", last_error or "the training process ended unexpectedly", RESUME_HINT)
