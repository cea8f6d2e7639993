"""ResNet Explorer: the Streamlit entry point (pages arrive with the app issue)."""

import os

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.runs import RunStore

st.set_page_config(page_title="ResNet Explorer", layout="wide")
st.title("ResNet Explorer")
st.markdown(
    "Why do shortcuts let deep nets train? He et al. (2015) found that deeper *plain* "
    "nets reach **higher training error** than shallow ones (the degradation problem), "
    "while residual nets, whose blocks learn only a residual *F(x)* added to their "
    "input, get better with depth. This app trains both kinds of CIFAR-10 net side by "
    "side and looks inside them."
)
st.info(
    "The interactive pages are being built. Meanwhile, train from a terminal: "
    "`python -m resexplorer train --model plain-20 --model resnet-20 --data cifar10 --epochs 10`"
)

runs_dir = os.environ.get("RESEXPLORER_RUNS", "runs")
st.subheader(f"Runs in `{runs_dir}`")
try:
    rows = [run.summary() for run in RunStore(runs_dir).list()]
except ResExplorerError as err:
    st.error(str(err))
    rows = []
if rows:
    st.dataframe(rows, hide_index=True)
else:
    st.write("No runs yet.")
