"""ResNet Explorer: the navigation table and the shared sidebar, nothing more.

Pages read the sidebar's choices from st.session_state:
  "data_source"  "cifar10", "synthetic" or an image-folder path
  "runs_dir"     the runs folder
"""

import os
from pathlib import Path

import streamlit as st

from resexplorer.system import device_summary

# The icon is a local file: a material-symbol icon would be fetched from Google at every visit.
st.set_page_config(page_title="ResNet Explorer", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"), layout="wide")

SOURCES = {
    "CIFAR-10 (downloaded on first use)": "cifar10",
    "Image folder": "folder",
    "Synthetic (generated, no download)": "synthetic",
}


@st.cache_resource(show_spinner=False)
def _device() -> tuple[str, str]:
    return device_summary()


with st.sidebar:
    kind, description = _device()
    st.markdown(f"**Device:** {kind}  \n<small>{description}</small>", unsafe_allow_html=True)
    default_folder = os.environ.get("RESEXPLORER_DATA", "")
    choice = st.radio(
        "Data source",
        list(SOURCES),
        index=1 if default_folder else 0,
        key="source_choice",
        help="Image folder: train/ and test/ (or val/) subfolders with one folder per class. "
        "Its default comes from the RESEXPLORER_DATA environment variable.",
    )
    if SOURCES[choice] == "folder":
        folder = st.text_input("Image folder", value=default_folder, key="data_folder", placeholder="path/to/folder with train/ and test/")
        st.session_state["data_source"] = folder.strip()
        if folder.strip() and not os.path.isdir(folder.strip()):
            st.warning("That folder does not exist here.")
    else:
        st.session_state["data_source"] = SOURCES[choice]
    st.session_state["runs_dir"] = st.text_input(
        "Runs folder", value=os.environ.get("RESEXPLORER_RUNS", "runs"), key="runs_dir_input", help="Where your training runs are kept (RESEXPLORER_RUNS)."
    ).strip() or "runs"

pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train & compare", icon=":material/monitoring:"),
    st.Page("views/inside.py", title="Inside the nets", icon=":material/biotech:"),
    st.Page("views/attributions.py", title="Attributions", icon=":material/visibility:"),
    st.Page("views/tta.py", title="Test-time augmentation", icon=":material/flip:"),
    st.Page("views/runs.py", title="Runs", icon=":material/folder_open:"),
]
st.navigation(pages).run()
