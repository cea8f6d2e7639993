"""Plotly charts that redraw in place, for a page that redraws them several
times a second (the Playground).

st.plotly_chart mounts a chart afresh whenever its figure changes
(Streamlit 1.67): at every refresh the browser builds each chart from
nothing, and on a 2-core laptop that work, not the training, set how often
the Playground could redraw (1.6 times a second for its three charts) and
how long a click on Pause took to show (2 s). This component holds the
charts in one frame and hands each new figure to Plotly.react, which
changes only what changed; zoom, pan and hidden legend entries stay by
plotly's own layout.uirevision. It takes the figures st.plotly_chart takes,
so the two are interchangeable.

The frame's files are served from a folder prepared here: its page
(live_charts.html) and plotly.js copied from the installed plotly package,
the library st.plotly_chart draws with, so nothing is downloaded. Where no
such folder can be written, the charts are drawn with st.plotly_chart.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
import streamlit.components.v1 as components

PAGE = Path(__file__).with_name("live_charts.html")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _ready(folder: Path, page: bytes) -> bool:
    """Whether a folder holds this version's page and a whole plotly.js."""
    try:
        return (folder / "index.html").read_bytes() == page and (
            folder / "plotly.min.js"
        ).stat().st_size == PLOTLY_JS.stat().st_size
    except OSError:
        return False


def served_folder(parent: Path | None = None) -> Path | None:
    """The folder the frame is served from, made once per version of the
    page and of plotly and shared by every server of the machine. Made under
    a temporary name and renamed whole, so a second server starting at the
    same moment never serves half a file; None if it cannot be made."""
    page = PAGE.read_bytes()
    parent = Path(parent or tempfile.gettempdir())
    tag = hashlib.sha256(page + plotly.__version__.encode()).hexdigest()[:12]
    folder = parent / f"resexplorer-live-charts-{tag}"
    if _ready(folder, page):
        return folder
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=parent))
        shutil.copyfile(PLOTLY_JS, staging / "plotly.min.js")
        (staging / "index.html").write_bytes(page)
    except OSError:
        return None
    try:
        os.replace(staging, folder)
    except OSError:  # made meanwhile by another server, or a damaged one in the way: serve our own copy
        if not _ready(folder, page):
            return staging
        shutil.rmtree(staging, ignore_errors=True)
    return folder


_FOLDER = served_folder()
_frame = components.declare_component("live_charts", path=str(_FOLDER)) if _FOLDER else None


def live_charts(figs: list[dict | go.Figure], configs: list[dict], key: str) -> None:
    """The figures, one below the other, redrawn in place at every call with
    the same key. A figure is a go.Figure or plain plotly JSON (a dict, not
    validated). configs: plotly's config per figure (figures.chart_config)."""
    if _frame is None:
        for i, (fig, config) in enumerate(zip(figs, configs)):
            st.plotly_chart(fig, key=f"{key}_{i}", config=config)
        return
    text = "[" + ",".join(pio.to_json(fig, validate=False) for fig in figs) + "]"
    _frame(figures=text, configs=configs, key=key, default=None)
