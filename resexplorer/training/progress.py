"""tqdm progress bars for the command line (the UI hooks the same events)."""

from __future__ import annotations

import contextlib
import sys

from tqdm import tqdm

from .engine import Callback, EpochEvent, Member, Race, StepEvent


@contextlib.contextmanager
def tqdm_decode_progress():
    """A `progress(done, total, what)` callback for the first decode of a data set."""
    bars: dict[str, tqdm] = {}

    def progress(done: int, total: int, what: str) -> None:
        bar = bars.get(what)
        if bar is None:
            bar = bars[what] = tqdm(total=total, desc=what, unit="img", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()


class TqdmProgress(Callback):
    """One bar over the race's steps, with each model's latest errors."""

    def __init__(self):
        self.bar: tqdm | None = None
        self.latest: dict[str, str] = {}

    def on_race_start(self, race: Race) -> None:
        self.close()
        done = race.start_step
        desc = "compiling, then training" if race.compiled else "training"
        self.bar = tqdm(
            total=race.total_steps, initial=done, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True
        )

    def on_step(self, member: Member, event: StepEvent) -> None:
        self.latest[member.name] = f"train {100 * event.error:.1f}%"
        self._refresh(member.step)

    def on_epoch_end(self, member: Member, event: EpochEvent) -> None:
        text = f"train {100 * event.train_error:.1f}%"
        if event.test_error is not None:
            text += f" test {100 * event.test_error:.1f}%"
        self.latest[member.name] = text
        self._refresh(member.step)

    def _refresh(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(max(0, step - self.bar.n))
            self.bar.set_postfix_str(" | ".join(f"{k}: {v}" for k, v in self.latest.items()), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.latest = None, {}
