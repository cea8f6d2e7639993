"""Long actions on a page (scoring, sweeps, slices, a download): a progress
bar that says how long is left, and a Cancel button, as training has.

Cancelling needs no thread of its own: a click on Cancel makes Streamlit
rerun the page, and Streamlit stops the running script at its next
element update, which the progress bar makes after every step. The
button's callback runs first in the new run and records the cancellation,
so a page that starts the action by itself (not on a click) can leave it
alone until the user asks again (`was_cancelled`, `forget_cancelled`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import streamlit as st

from resexplorer.progress import Progress
from resexplorer.services.countdown import Countdown, Pieces

CANCELLED = "cancelled_actions"  # session state: {action key: what was cancelled}


def _cancel(key: str, what: str, then: Callable[[], None] | None) -> None:
    st.session_state.setdefault(CANCELLED, {})[key] = what
    if then:
        then()
    st.toast(f"Cancelled: {what}. What had finished is kept.", icon=":material/cancel:")


def was_cancelled(key: str) -> bool:
    return key in st.session_state.get(CANCELLED, {})


def forget_cancelled(key: str) -> None:
    st.session_state.get(CANCELLED, {}).pop(key, None)


@contextlib.contextmanager
def long_action(
    what: str,
    key: str,
    part: str = "",
    on_cancel: Callable[[], None] | None = None,
    pieces: Pieces | None = None,
) -> Iterator[Progress]:
    """Progress bar and Cancel button for `what`, gone when it ends; yields
    progress(done in [0, 1], text). Starting it forgets an earlier cancel.
    `part` tells apart the pieces of one action a page run goes through
    (an analysis of each run): a cancel of any piece cancels the action;
    with `pieces`, the bar counts them and times them all. `on_cancel` runs
    in the Cancel's callback, before the page reruns: the place to switch
    off a widget that would start the action again."""
    forget_cancelled(key)
    slot = st.empty()
    with slot.container():
        bar_place, button_place = st.columns([6, 1], vertical_alignment="center")
        bar = bar_place.progress(pieces.done / pieces.count if pieces else 0.0, text=f"{what}…")
        button_place.button(
            "Cancel",
            key=f"cancel:{key}:{part}",
            on_click=_cancel,
            args=(key, what, on_cancel),
            icon=":material/cancel:",
            help="Stops it at its next step; what had finished is kept.",
        )
    countdown = Countdown()

    def progress(done: float, text: str) -> None:
        done = min(max(float(done), 0.0), 1.0)
        if pieces:
            bar.progress(*pieces.progress(done, text))
        else:
            bar.progress(done, text=f"{text} · {countdown.left(done)}")

    try:
        yield progress
    except Exception:
        slot.empty()  # the caller says what went wrong; the bar and its button go
        raise
    # A rerun or stop (BaseException: Cancel, or another click) passes untouched: the next run redraws the page.
    slot.empty()
