"""What the pages share beyond their frame (ui/sidebar.py), in one place:

- image_pool: the data source's images that analyses and galleries use,
  decoded once per data source for every page under one cache key (each
  page used to keep its own cached copy);
- the run picker of ui/run_picker.py (depth + shortcut toggle beside the
  full multiselect), re-exported so a page finds it here too;
- Analyses: a run's cached analysis, else computed now with a progress bar
  that says how long is left and a Cancel button (ui/long_action.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.services import analysis
from resexplorer.services.analysis import ImagePool
from resexplorer.services.countdown import Pieces
from ui.long_action import long_action, was_cancelled
from ui.run_picker import Picked, pick_runs, pick_trained_models

__all__ = [
    "Analyses",
    "Picked",
    "image_pool",
    "pick_runs",
    "pick_trained_models",
    "pool_for",
]


@st.cache_resource(show_spinner="Loading the data source's images…", max_entries=2)
def image_pool(source: str) -> ImagePool:
    """The data source's images (or the shipped samples when it cannot load
    here), shared by every page and session: decoded once per source."""
    return analysis.image_pool(source)


def pool_for(run, source: str) -> ImagePool:
    """The images to use with `run`: the source's if the run learned its
    classes, else the shipped CIFAR-10 samples for a CIFAR-10 run; raises
    a ResExplorerError that says which data source to pick otherwise."""
    return analysis.pool_for(run, image_pool(source))


def button_once(label: str, key: str, **options) -> bool:
    """A button that goes as soon as it is clicked, not at the next rerun:
    what it asked for is drawn in its stead."""
    slot = st.empty()
    clicked = slot.button(label, key=key, **options)
    if clicked:
        slot.empty()
    return clicked


UNASKED = "analysis:unasked"  # the long action of the analyses a page starts by itself


class Work(NamedTuple):
    """One analysis a page wants: of a run's checkpoint, with its settings."""

    run: Any
    epoch: int
    kind: str
    settings: Mapping = {}


class Analyses:
    """The analyses (services/analysis.py) of the runs a page shows. Each is
    read from its cache if it is there, else computed now on the data
    source's images with a progress bar; results of the shipped runs go to
    the user cache, since the shipped runs stay as shipped. A fallback
    pool's note is said once per page run (one Analyses per run); errors
    are said on the page, not raised."""

    def __init__(self, source: str, shipped: Collection[str]):
        self.source = source
        self.shipped = set(shipped)
        self._said: set[str] = set()
        self._again: bool | None = None  # after a cancel: whether "compute them now" was clicked, once asked

    def results(self, work: Sequence[Work], unasked: bool = False, stop_at_failure: bool = False) -> list[dict | None]:
        """Each piece of work's result: read from the cache, else computed
        now; the ones computed are one action to the user, their bars saying
        "2 of 4" and the time left for all. `unasked`: the page computes
        these by itself, not on a click, so once the user cancels them they
        wait for their word (a button here). `stop_at_failure`: later work
        needs the earlier (a None stops the rest)."""
        return self._completed(work, self._cached(work), unasked, stop_at_failure)

    @staticmethod
    def _cached(work: Sequence[Work]) -> list[dict | None]:
        return [analysis.cached(w.run, w.epoch, w.kind, **w.settings) for w in work]

    def _completed(
        self, work: Sequence[Work], found: list[dict | None], unasked: bool = False, stop_at_failure: bool = False
    ) -> list[dict | None]:
        """`found` (the cached results) with what is missing computed, as one action."""
        missing = [i for i, result in enumerate(found) if result is None]
        pieces = Pieces(len(missing)) if len(missing) > 1 else None
        for i in missing:
            found[i] = self._result(work[i], unasked, pieces)
            if pieces:
                pieces.done += 1
            if found[i] is None and stop_at_failure:
                break
        return found

    def on_request(self, work: Sequence[Work], label: str, key: str, **options) -> list[dict | None]:
        """The cached results of the work and, for what is missing, a button
        (`label` may say "{missing}"): once clicked, it goes, and the missing
        work is computed as one action."""
        found = self._cached(work)
        missing = sum(result is None for result in found)
        if missing and button_once(label.format(missing=missing), key):
            return self._completed(work, found, **options)
        return found

    def _result(self, work: Work, unasked: bool, pieces: Pieces | None) -> dict | None:
        # What the page starts by itself is one action: a Cancel stops it all, not just the analysis under way.
        action = UNASKED if unasked else f"analysis:{work.kind}"
        if unasked and was_cancelled(action) and not self._asked_again():
            return None
        return self._compute(work.run, work.epoch, work.kind, action, pieces, work.settings)

    def _compute(self, run, epoch: int, kind: str, action: str, pieces: Pieces | None, settings: dict) -> dict | None:
        name = run.config()["model_name"]
        try:
            pool = pool_for(run, self.source)
        except ResExplorerError as err:
            st.error(f"{name}: {err}")
            return None
        if pool.note and pool.note not in self._said:
            st.info(pool.note)
            self._said.add(pool.note)
        try:
            piece = f"{kind}:{run.run_id}@{epoch}"
            with long_action(f"{analysis.KINDS[kind].title} of {name}", action, piece, pieces=pieces) as progress:
                return analysis.compute(
                    run,
                    epoch,
                    kind,
                    pool,
                    progress=lambda done, text: progress(done, f"{name}: {text}"),
                    store_beside=run.run_id not in self.shipped,
                    **settings,
                )
        except ResExplorerError as err:
            st.error(f"{name}: {err}")
            return None

    def _asked_again(self) -> bool:
        """Once per page run: say the page's own analyses were cancelled, with
        a button to start them again (gone once they run)."""
        if self._again is None:
            self._again = button_once(
                "Cancelled: compute this page's analyses now", key=f"again:{UNASKED}", icon=":material/replay:"
            )
        return self._again
