"""Named points where this process can be killed on purpose, as a power cut
or `kill -9` would kill it: the reliability tests prove that what a run has
committed survives a kill at each one.

Off unless the environment names a point:

    RESEXPLORER_KILL_AT=epoch-committed      killed the first time it is reached
    RESEXPLORER_KILL_AT=epoch-committed@3    killed the third time

A point costs one dictionary lookup when nothing is named.
"""

from __future__ import annotations

import os
from collections import Counter

from .processes import die_now

KILL_AT = "RESEXPLORER_KILL_AT"

# Every point, in the order one run meets them. Naming them here lets the
# tests go through all of them, and `due` refuses a misspelt one.
KILL_POINTS = (
    "run-created",  # a run folder with its config, before any checkpoint
    "checkpoint-unrenamed",  # a checkpoint fully written to its temporary file, not yet renamed into place
    "step-logged",  # a training step's record appended, mid-epoch
    "epoch-saved",  # an epoch's checkpoint in place, its record not yet appended
    "epoch-line-torn",  # half of an epoch's record written
    "epoch-committed",  # an epoch's record appended, the previous epoch's checkpoint not yet removed
    "epoch-tidied",  # the previous epoch's checkpoint removed (between one model's epoch end and the next's)
)

_reached: Counter[str] = Counter()


def due(point: str) -> bool:
    """Whether this reach of `point` is the one the environment asks to be
    killed at (counting reaches in this process)."""
    wanted = os.environ.get(KILL_AT)
    if not wanted:
        return False
    name, _, nth = wanted.partition("@")
    for named in (point, name):  # a misspelt point would never kill, and a test would pass for nothing
        if named not in KILL_POINTS:
            raise ValueError(f"unknown kill point {named!r}; known: {', '.join(KILL_POINTS)}")
    if name != point:
        return False
    _reached[point] += 1
    return _reached[point] == int(nth or 1)


def kill() -> None:
    """Die at once, without cleanup or flushing: as `kill -9` would."""
    die_now()


def point(name: str) -> None:
    if due(name):
        kill()
