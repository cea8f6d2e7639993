"""The sidebar's device line, found without making a page wait for torch.

What trains here (CUDA, MPS or the CPU) is known only to torch, and
importing torch costs a fresh server about two seconds. Home and the Runs
page read runs without torch, so the question goes to a background thread
once per server process; a page drawn before the answer says "finding…"
in a small fragment that looks again every second and, once the answer is
in, reruns the page once so the line is drawn plainly (without a timer).
The thread's import also warms torch for the pages that train or analyse.
"""

from __future__ import annotations

import threading

import streamlit as st

PROBE_THREAD = "device-probe"  # the one thread that imports torch for this line (tests/test_layers.py)


class DeviceProbe:
    """device_summary() computed in a thread of its own; `summary` is None
    until it is known."""

    def __init__(self) -> None:
        self.summary: tuple[str, str] | None = None
        threading.Thread(target=self._find, name=PROBE_THREAD, daemon=True).start()

    def _find(self) -> None:
        try:
            from resexplorer.system import device_summary

            self.summary = device_summary()
        except Exception as err:  # a broken torch install: the line says so, the page goes on
            self.summary = ("unknown", f"torch could not be loaded: {type(err).__name__}: {err}")


@st.cache_resource(show_spinner=False)
def _probe() -> DeviceProbe:
    return DeviceProbe()


def _draw(summary: tuple[str, str]) -> None:
    kind, description = summary
    st.markdown(f"**Device:** {kind}  \n<small>{description}</small>", unsafe_allow_html=True)


@st.fragment(run_every=1.0)
def _when_known() -> None:
    summary = _probe().summary
    if summary is None:
        st.markdown("**Device:** finding…")
    else:
        st.rerun()  # the whole page once more: it draws the line without this fragment and its timer


def device_line() -> None:
    """Draw the device line where the caller is (the sidebar)."""
    summary = _probe().summary
    if summary is not None:
        _draw(summary)
    else:
        _when_known()
