"""The sidebar's device line, found without making a page wait for torch.

What trains here (CUDA, MPS or the CPU) is known only to torch, and
importing torch costs a fresh server about two seconds. Home and the Runs
page read runs without torch, so the question goes to a background thread
once per server process; a page drawn before the answer says "finding…"
in a small fragment that looks again every second and, once the answer is
in, reruns the page once so the line is drawn plainly (without a timer).
The thread's import also warms torch for the pages that train or analyse.

A page that imported torch itself before drawing its sidebar (Train,
Playground, ...) waits the moment device_summary takes instead: it gets
the line on its first run, with no timer and no rerun. Those are the pages
with timed fragments of their own (live charts), and a whole-page rerun
called from a second timed fragment beside them is the one moving part a
CI failure suspects: there the Playground's live chart stopped advancing
once, on a fresh server (the test alone passed 8 runs of 8 here).
"""

from __future__ import annotations

import sys
import threading

import streamlit as st

PROBE_THREAD = "device-probe"  # the one thread that imports torch for this line (tests/test_layers.py)
READY_WAIT_S = 30.0  # the most a page with torch loaded waits for the answer (a first CUDA call takes seconds)


class DeviceProbe:
    """device_summary() computed in a thread of its own; `summary` is None
    until it is known."""

    def __init__(self) -> None:
        self.summary: tuple[str, str] | None = None
        self.answered = threading.Event()
        threading.Thread(target=self._find, name=PROBE_THREAD, daemon=True).start()

    def _find(self) -> None:
        try:
            from resexplorer.system import device_summary

            self.summary = device_summary()
        except Exception as err:  # a broken torch install: the line says so, the page goes on
            self.summary = ("unknown", f"torch could not be loaded: {type(err).__name__}: {err}")
        finally:
            self.answered.set()


@st.cache_resource(show_spinner=False)
def _probe() -> DeviceProbe:
    return DeviceProbe()


def torch_loaded() -> bool:
    """Whether torch is imported in full in this process: not merely begun
    by the probe's thread (a module being imported is in sys.modules
    already, its spec marked as initialising)."""
    torch = sys.modules.get("torch")
    return torch is not None and not getattr(getattr(torch, "__spec__", None), "_initializing", False)


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
    probe = _probe()
    if probe.summary is None and torch_loaded():
        probe.answered.wait(READY_WAIT_S)
    summary = probe.summary
    if summary is not None:
        _draw(summary)
    else:
        _when_known()
