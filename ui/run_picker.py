"""The run picker the Inside, Attributions and TTA pages share.

A depth choice and a shortcut toggle (off / on / both) pick the runs in one
click (plain-56 for resnet-56, or both); beside them the full multiselect
takes any runs, shipped or the user's. The toggle writes the multiselect,
so what the page draws always follows the multiselect alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.runs.store import Run, open_run
from resexplorer.science.inference import LoadedModel, load_run_model
from resexplorer.services.catalog import SHORTCUT_CHOICES, SHORTCUT_LABELS, Catalog, catalog
from ui.choices import Linked, read_link, write_link


@dataclass
class Picked:
    offer: Catalog  # every run on offer (its .shipped says which came with the app)
    runs: list[Run]  # the chosen ones, in order
    models: list[LoadedModel]  # their latest checkpoints, loaded
    classes: list[str]  # what they all learned


def _apply_toggle(offer: Catalog, key: str) -> None:
    """The depth or the toggle changed: the multiselect takes their runs."""
    found, _ = offer.pair(st.session_state[f"{key}:depth"], st.session_state[f"{key}:shortcuts"])
    st.session_state[key] = found


def pick_runs(offer: Catalog, label: str, key: str, depth: int, shortcuts: str) -> list[str]:
    """Run ids chosen by depth + shortcut toggle, or by hand; `depth` and
    `shortcuts` are the page's defaults. Stops the page when none are chosen."""
    if offer.damaged:
        st.caption(
            f"{len(offer.damaged)} damaged run(s) in your runs folder are not offered: the **Runs** page says "
            "what is wrong with each."
        )
    if not offer.runs:
        st.info("No runs yet, shipped or yours. Train some on the **Train & compare** page, then come back.")
        st.stop()
    depths = offer.depths()
    if depths and depth not in depths:
        depth = depths[-1]
    # The URL carries the choice (a link reproduces the view): runs by id, and the toggle's depth and shortcuts.
    linked = [Linked(key, "runs", list(offer.runs), many=True)]
    if depths:
        linked += [Linked(f"{key}:depth", "depth", depths), Linked(f"{key}:shortcuts", "shortcuts", SHORTCUT_CHOICES)]
    read_link(key, linked)
    depth = st.session_state.get(f"{key}:depth", depth)
    shortcuts = st.session_state.get(f"{key}:shortcuts", shortcuts)
    if key in st.session_state:  # runs gone since (another runs folder, a deletion) leave the choice
        st.session_state[key] = [i for i in st.session_state[key] if i in offer.runs]
    else:  # first view: the defaults' runs (the user's latest when nothing ships)
        found, _ = offer.pair(depth, shortcuts) if depths else ([], [])
        st.session_state[key] = found or offer.yours[-2:]
    depth_col, toggle_col, full = st.columns([0.8, 2.2, 4])
    if depths:
        st.session_state.setdefault(f"{key}:depth", depth)
        st.session_state.setdefault(f"{key}:shortcuts", shortcuts)
        depth_col.selectbox(
            "Depth (6n+2)",
            depths,
            key=f"{key}:depth",
            on_change=_apply_toggle,
            args=(offer, key),
        )
        toggle_col.segmented_control(
            "Shortcuts",
            SHORTCUT_CHOICES,
            required=True,
            key=f"{key}:shortcuts",
            format_func=SHORTCUT_LABELS.get,
            on_change=_apply_toggle,
            args=(offer, key),
            help="Off: the plain net of this depth; on: the residual net (option A); both: side by side.",
        )
        _, missing = offer.pair(st.session_state[f"{key}:depth"], st.session_state[f"{key}:shortcuts"])
        if missing:
            toggle_col.caption(f"No trained run of {', '.join(missing)} yet: train one on **Train & compare**.")
    chosen = full.multiselect(label, list(offer.runs), format_func=offer.label, key=key)
    write_link(linked)
    if not chosen:
        st.info("Pick one or more runs above.")
        st.stop()
    return chosen


@st.cache_resource(show_spinner="Loading models…", max_entries=8)
def _model(run_path: str, version: float) -> LoadedModel:
    """One per run and checkpoint file version (its mtime)."""
    return load_run_model(open_run(run_path))


def pick_trained_models(runs_dir: str, label: str, key: str, depth: int, shortcuts: str) -> Picked:
    """pick_runs over runs with a checkpoint, loaded; stops the page with a
    message when there is nothing to show."""
    offer = catalog(runs_dir, trained_only=True)
    if not offer.runs:
        st.info("No trained runs yet, shipped or yours. Train some on the **Train & compare** page, then come back.")
        st.stop()
    runs = [offer.runs[i] for i in pick_runs(offer, label, key, depth, shortcuts)]
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
