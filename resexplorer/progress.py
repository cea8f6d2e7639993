"""How long-running work says how far it has got, one definition for the
whole package (the science, the analyses, the downloads, the pages' progress
bars all take it)."""

from __future__ import annotations

from collections.abc import Callable

# The share done, 0 to 1, and what is being done ("1,000 of 10,000 images").
Progress = Callable[[float, str], None]
# Counted work whose total is known as it goes (decoding a data set): done, total, what.
CountProgress = Callable[[int, int, str], None]


def format_duration(seconds: float) -> str:
    """ "42 s", "10 min", "2.0 h": a duration as the pages and the command line say it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
