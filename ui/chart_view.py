"""Keeping the user's view of a chart that redraws: zoom, pan and hidden
legend entries survive the live chart's refreshes.

plotly keeps such state across redraws by itself (layout.uirevision), but
Streamlit 1.67 gives a chart a new identity whenever its figure changes and
mounts it afresh, which drops that state. So a small component in the page
(chart_view.js) listens to the chart's relayout and restyle events and
reports the view to Python; the next figure is drawn with it
(figures.with_view). A double-click on the chart (autoscale) hands the axes
back to the data, over any range the figure itself sets.

The remount also made the chart blink at every refresh (a frame or two
with no chart). The same component shows the new chart as soon as plotly
has drawn it and, until then, a still copy of the last one in its place.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime

_NAME = "resexplorer.chart_view"
_JS = Path(__file__).with_name("chart_view.js").read_text(encoding="utf-8")
_keepers = weakref.WeakKeyDictionary()  # a server's component registry -> the component it knows


def _keeper():
    """The component, registered once in the registry of the server that
    runs this page. Streamlit keeps components per server runtime, and a
    process may run several one after another (AppTest does): registered
    once at import, the component was unknown to every later runtime on
    Streamlit 1.65, the last release for Python 3.10."""
    if not Runtime.exists():  # no server (a bare import): a throwaway registration
        return st.components.v2.component(_NAME, js=_JS)
    registry = Runtime.instance().bidi_component_registry
    if registry not in _keepers:
        _keepers[registry] = st.components.v2.component(_NAME, js=_JS)
    return _keepers[registry]


def kept_view(chart_key: str, revision: str) -> dict:
    """The user's last view of the chart drawn with `key=chart_key`:
    {"x": [low, high], "auto" or None, "y": ..., "hidden": [trace names]}. A new
    `revision` (other axes, say) starts from the data's own view."""
    result = _keeper()(
        key=f"{chart_key}:view:{revision}",
        data={"chart": chart_key},
        on_view_change=lambda: None,  # a state value, so it is kept and each change reruns the fragment
        height=0,
    )
    return result.view or {}
