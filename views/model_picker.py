"""The run picker the Attributions and TTA pages share: choose trained runs,
load their latest checkpoints once, and make sure they share classes."""

from dataclasses import dataclass
from typing import Sequence

import streamlit as st

from resexplorer.catalog import Catalog, catalog
from resexplorer.errors import ResExplorerError
from resexplorer.inference import LoadedModel, load_run_model
from resexplorer.runs import Run, open_run


@dataclass
class Picked:
    offer: Catalog  # every run on offer (its .shipped says which came with the app)
    runs: list[Run]  # the chosen ones, in order
    models: list[LoadedModel]  # their latest checkpoints, loaded
    classes: list[str]  # what they all learned


@st.cache_resource(show_spinner="Loading models…", max_entries=8)
def _model(run_path: str, version: float) -> LoadedModel:
    """One per run and checkpoint file version (its mtime)."""
    return load_run_model(open_run(run_path))


def pick_trained_models(runs_dir: str, label: str, shipped_defaults: Sequence[str], fallback: int, key: str) -> Picked:
    """A multiselect of trained runs; stops the page with a message when
    there is nothing to show."""
    offer = catalog(runs_dir, trained_only=True)
    if not offer.runs:
        st.info("No trained runs yet, shipped or yours. Train some on the **Train & compare** page, then come back.")
        st.stop()
    chosen = st.multiselect(label, list(offer.runs), default=offer.defaults(shipped_defaults, fallback), format_func=offer.label, key=key)
    if not chosen:
        st.info("Pick one or more runs above.")
        st.stop()
    runs = [offer.runs[i] for i in chosen]
    try:
        models = [_model(str(run.path), run.checkpoint_path("last").stat().st_mtime) for run in runs]
    except (ResExplorerError, OSError) as err:
        st.error(str(err))
        st.stop()
    classes = models[0].classes
    if any(m.classes != classes for m in models):
        st.error("These runs learned different classes; pick runs trained on the same data.")
        st.stop()
    return Picked(offer, runs, models, classes)
