"""How long a long action has left, from how far it has got: what the
pages' progress bars say beside the step they are at.

Pure logic (the clock is passed in), so it is tested without a UI or a wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..progress import format_duration

# Before this much of the work or this many seconds, the rate says little.
SURE_AFTER_FRACTION = 0.02
SURE_AFTER_SECONDS = 1.0


class Countdown:
    """Started with the action; `left(done)` for done in [0, 1]."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()

    def seconds_left(self, done: float) -> float | None:
        """At the rate so far; None while too little is done to tell."""
        elapsed = self.clock() - self.started
        if done < SURE_AFTER_FRACTION or elapsed < SURE_AFTER_SECONDS:
            return None
        return elapsed * (1 - min(done, 1.0)) / done

    def left(self, done: float) -> str:
        seconds = self.seconds_left(done)
        return "estimating the time left…" if seconds is None else f"about {format_duration(seconds)} left"


@dataclass
class Pieces:
    """An action made of `count` pieces, each with its own progress bar (an
    analysis of each of several runs): the bars count the pieces and say
    the time left for all of them, at the rate since the first began."""

    count: int
    done: int = 0  # pieces finished
    countdown: Countdown = field(default_factory=Countdown)

    def progress(self, done: float, text: str) -> tuple[float, str]:
        """The whole action's fraction done and the bar's text, while the
        piece under way is `done` through and says `text`."""
        whole = (self.done + min(max(done, 0.0), 1.0)) / self.count
        return whole, f"{self.done + 1} of {self.count} · {text} · {self.countdown.left(whole)}"
