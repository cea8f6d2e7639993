"""A page's choices: the first values of its widgets, set in the session
once, and the choices its URL carries, so a link reproduces a view.
Torch-free, so a page that only reads runs (Home) can use it without
loading what the analyses need (ui/page_state.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


# --- choices in the page's URL ----------------------------------------------------
# A link, a bookmark or a refresh opens the same view: the choices that make
# it travel in the URL (st.query_params), read on the page's first draw in a
# session and written back after every run of the page.

LINKS_READ = "links_read"  # session state: the pages whose URL was read in this session


@dataclass(frozen=True)
class Linked:
    """One widget's choice as the page's URL carries it."""

    key: str  # the widget's session-state key
    param: str  # its name in the URL
    options: Sequence  # what may be chosen (a URL value matches an option's text)
    many: bool = False  # a list of choices, comma-joined


def read_link(page: str, linked: Sequence[Linked]) -> None:
    """The URL's choices become the widgets' values, once per page and
    session (after that the widgets are the truth, and the URL follows
    them). A value that is not on offer is said in one line, and its
    widget keeps the page's own choice: the nearest valid view, never an
    error."""
    read = st.session_state.setdefault(LINKS_READ, set())
    if page in read:
        return
    read.add(page)
    unknown = []
    for item in linked:
        raw = st.query_params.get(item.param)
        if raw is None:
            continue
        by_text = {str(option): option for option in item.options}
        asked = [text for text in raw.split(",") if text] if item.many else [raw]
        found = [by_text[text] for text in asked if text in by_text]
        unknown += [f"{item.param}={text}" for text in asked if text not in by_text]
        if found:
            st.session_state[item.key] = found if item.many else found[0]
    if unknown:
        st.warning(
            f"This link asks for {', '.join(unknown)}, which this page does not offer here; "
            "it shows the nearest view it has."
        )


def write_link(linked: Sequence[Linked]) -> None:
    """The widgets' current choices into the URL (only what changed)."""
    for item in linked:
        value = st.session_state.get(item.key)
        if value is None or (item.many and not value):
            if item.param in st.query_params:
                del st.query_params[item.param]
            continue
        text = ",".join(str(v) for v in value) if item.many else str(value)
        if st.query_params.get(item.param) != text:
            st.query_params[item.param] = text
