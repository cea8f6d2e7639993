"""The shared frame of every page: page settings, the app's navigation (as
page links with titles and icons) and the sidebar's choices.

Every page script, app.py (Home) included, starts with `page_frame()`.
Streamlit's own file-name navigation is hidden (client.showSidebarNavigation
in .streamlit/config.toml), so a page opened first by its URL, a bookmark or
a refreshed tab, shows the same sidebar as one reached by a link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from resexplorer.app_files import ASSETS_DIR
from resexplorer.errors import ConfigError
from resexplorer.services.server_policy import ServerPolicy, server_policy
from ui.device_line import device_line
from ui.gc_freeze import freeze_loaded_code
from ui.text import literal


@dataclass(frozen=True)
class Page:
    script: str  # relative to the project folder; its file name is the URL path
    title: str
    icon: str
    blurb: str  # what Home's "Where to go" says of it


PAGES = (
    Page("app.py", "Home", ":material/home:", "Home: the degradation problem at first sight"),
    Page(
        "pages/train.py",
        "Train & compare",
        ":material/monitoring:",
        "Train & compare: race plain and residual nets live (Fig. 6)",
    ),
    Page(
        "pages/inside.py",
        "Inside the nets",
        ":material/biotech:",
        "Inside the nets: responses, residual branches, lesions, landscapes",
    ),
    Page(
        "pages/attributions.py",
        "Attributions",
        ":material/visibility:",
        "Attributions: what plain and residual nets look at",
    ),
    Page(
        "pages/tta.py",
        "Test-time augmentation",
        ":material/flip:",
        "Test-time augmentation: on your photos and the test set",
    ),
    Page("pages/runs.py", "Runs", ":material/folder_open:", "Runs: compare, delete and resume runs"),
    Page(
        "pages/playground.py",
        "Playground",
        ":material/scatter_plot:",
        "Playground: deep plain and residual nets on 2-D points, live in seconds",
    ),
)

SOURCES = {
    "CIFAR-10 (downloaded on first use)": "cifar10",
    "Image folder": "folder",
    "Synthetic (generated, no download)": "synthetic",
}


@dataclass(frozen=True)
class Frame:
    """The sidebar's choices, as every page reads them."""

    data_source: str  # "cifar10", "synthetic" or an image-folder path
    runs_dir: str
    policy: ServerPolicy  # the operator's: a shared server fixes folders and caps jobs


def _navigation() -> None:
    for page in PAGES:
        st.page_link(page.script, label=page.title, icon=page.icon)


def _data_source(policy: ServerPolicy) -> str:
    default_folder = policy.data_folder
    # A shared server offers an image folder only where its operator names one, and no path is typed.
    offered = [s for s in SOURCES if not (policy.shared and SOURCES[s] == "folder" and not default_folder)]
    choice = st.radio(
        "Data source",
        offered,
        index=1 if default_folder else 0,
        key="source_choice",
        persist_state="session",
        help="Image folder: train/ and test/ (or val/) subfolders with one folder per class. "
        "Its default comes from the RESEXPLORER_DATA environment variable.",
    )
    if SOURCES[choice] != "folder":
        return SOURCES[choice]
    if policy.shared:
        st.caption(literal(f"Image folder (set by the server's operator): {default_folder}"))
        return default_folder
    folder = st.text_input(
        "Image folder",
        value=default_folder,
        key="data_folder",
        persist_state="session",
        placeholder="path/to/folder with train/ and test/",
    ).strip()
    if folder and not os.path.isdir(os.path.expanduser(folder)):
        st.warning("That folder does not exist here.")
    return folder


def tab_title(title: str) -> str:
    """The browser tab's title of the page whose entry in PAGES is `title`."""
    return f"{title} · ResNet Explorer" if title != "Home" else "ResNet Explorer"


def page_frame(title: str) -> Frame:
    """Set the page up and draw the sidebar; returns its choices. `title`
    is the page's entry in PAGES (its browser-tab title)."""
    # The icon is a local file: a material-symbol favicon would be fetched from Google at every visit.
    st.set_page_config(
        page_title=tab_title(title),
        page_icon=str(ASSETS_DIR / "favicon.png"),
        layout="wide",
    )
    policy = _policy()
    if policy.shared:  # process-wide, and the operator's: no visitor sees a traceback or the deploy menu
        st.set_option("client.showErrorDetails", "none")
        st.set_option("client.toolbarMode", "viewer")
    with st.sidebar:
        _navigation()
        st.divider()
        device_line()
        source = _data_source(policy)
        if policy.shared:
            runs_dir = policy.runs_dir
            st.caption(literal(f"Runs folder (set by the server's operator): {runs_dir}"))
        else:
            runs_dir = st.text_input(
                "Runs folder",
                value=policy.runs_dir,
                key="runs_dir_input",
                persist_state="session",
                help="Where your training runs are kept (RESEXPLORER_RUNS).",
            ).strip()
    freeze_loaded_code()  # the page's modules are loaded by now: see ui/gc_freeze.py
    return Frame(data_source=source, runs_dir=runs_dir or "runs", policy=policy)


def _policy() -> ServerPolicy:
    """The operator's policy; a cap they set wrong stops every page with its name."""
    try:
        return server_policy()
    except ConfigError as err:
        st.error(literal(f"This server is set up wrongly: {err}. Ask its operator to fix it."))
        st.stop()
