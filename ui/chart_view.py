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

from pathlib import Path

import streamlit as st

_keeper = st.components.v2.component(
    "resexplorer.chart_view", js=(Path(__file__).with_name("chart_view.js")).read_text(encoding="utf-8")
)


def kept_view(chart_key: str, revision: str) -> dict:
    """The user's last view of the chart drawn with `key=chart_key`:
    {"x": [low, high], "auto" or None, "y": ..., "hidden": [trace names]}. A new
    `revision` (other axes, say) starts from the data's own view."""
    result = _keeper(
        key=f"{chart_key}:view:{revision}",
        data={"chart": chart_key},
        on_view_change=lambda: None,  # a state value, so it is kept and each change reruns the fragment
        height=0,
    )
    return result.view or {}
