"""A page's choices: the first values of its widgets, set in the session
once. Torch-free, so a page that only reads runs (Home) can use it without
loading what the analyses need (ui/page_state.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st


def session_defaults(defaults: Mapping[str, Any]) -> None:
    """Give each widget key its first value where the session has none yet,
    so a page's defaults sit in one place. Draw those widgets without a
    default of their own (Streamlit warns of a widget given both) and with
    persist_state="page": a page stopped by st.stop() above a widget keeps
    the widget's value, and without that scope the widget would come back
    showing its own first option while the script reads the kept value.
    Switching pages still drops these values, so a page opens on its defaults."""
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value
