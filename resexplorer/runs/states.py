"""The states a run's status.json records, and which of them a resume
continues from: one definition for the store, the command line and the
pages. str-valued, so they compare equal to the strings already written in
runs' status files, and JSON holds them as those strings. (Not StrEnum:
that needs Python 3.11, and the package runs on 3.10.)"""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    RUNNING = "running"
    DONE = "done"
    INTERRUPTED = "interrupted"  # the process went away: a crash, a kill, a restart of the machine
    CANCELLED = "cancelled"
    FAILED = "failed"
    DIVERGED = "diverged"

    __str__ = str.__str__  # "done" in messages, on every Python (3.12 changed Enum's format of mixins)


# What a resume continues from: stopped before the end, with its last completed epoch kept.
RESUMABLE = frozenset({RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED, RunState.DIVERGED})


def resumable(status: str | None) -> bool:
    """Whether a run with this recorded status can be resumed; a status this
    version does not know cannot."""
    return status in RESUMABLE
