"""ResNet Explorer's Home page, and the script `streamlit run app.py` starts.

The other pages are Streamlit's native page folder, pages/; each page,
this one included, draws the shared frame (ui/sidebar.py) first.
"""

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.runs.store import RunStore
from resexplorer.services import reference
from resexplorer.services.catalog import SHORTCUT_ARCHS, SHORTCUT_CHOICES, SHORTCUT_LABELS
from resexplorer.services.claims import claims_of_runs
from resexplorer.services.curves import curve_from_run
from resexplorer.services.figures import chart_config, error_curves
from resexplorer.services.paper import CITATION
from resexplorer.services.reference import recipe_note, reference_runs
from resexplorer.services.run_table import group_progress
from ui.choices import session_defaults
from ui.sidebar import PAGES, page_frame

INTRO = (
    "Stack more layers on a plain convolutional net and, past a point, it gets **worse even on "
    "its training data**: He et al. called this the *degradation problem*. Their fix is a "
    "shortcut around every pair of layers, so each block only learns a residual *F(x)* that is "
    "added to its input; where the identity is already nearly right, *F(x)* can stay close to "
    "zero. Here you train plain and residual CIFAR-10 nets side by side, live, and look inside them."
)
DEFAULTS = {"home_shortcuts": "both"}


# Home's charts are the same for every visitor, and building a plotly
# figure was most of Home's work per visit (bench/class_load.py), so each
# is built once and shared: st.cache_resource hands every session the same
# objects (no copy), which the page and st.plotly_chart only read.


@st.cache_resource(show_spinner=False, ttl=5, max_entries=8)
def _chart_runs(runs_dir: str):
    """Fig. 6's chart for each shortcut choice (none while there is nothing
    to draw), of the shipped reference runs, else of the latest runs of the
    runs folder; and which of them it draws."""
    shipped = reference_runs("fig6")
    if shipped:
        runs, source = shipped, f"the shipped reference runs. {recipe_note(shipped)}"
    else:
        try:
            runs = RunStore(runs_dir).list()[-4:]
        except ResExplorerError:
            runs = []
        source = f"your latest runs in {runs_dir}."
    curves = [c for c in (curve_from_run(r) for r in runs) if not c.empty]
    if not curves:
        return {}, source
    shown = {choice: [c for c in curves if c.arch in SHORTCUT_ARCHS[choice]] for choice in SHORTCUT_CHOICES}
    return {choice: error_curves(chosen) for choice, chosen in shown.items()}, source


@st.cache_data(show_spinner=False, ttl=60)
def _findings(shipped_dir: str, group: str):
    """The paper's findings on a shipped group (empty while it does not
    ship); keyed by their folder so a moved folder is read afresh."""
    try:
        return claims_of_runs(reference_runs(group), group)
    except ValueError:  # a model of the group is missing
        return []


@st.cache_resource(show_spinner=False, ttl=60, max_entries=4)
def _shipped_group(shipped_dir: str, group: str):
    """The group's chart (None while it does not ship), and the epochs its
    runs have reached of how many (a group still being built ships
    part-trained between sittings)."""
    runs = reference_runs(group)
    curves = [curve_from_run(r) for r in runs]
    return error_curves(curves) if curves else None, recipe_note(runs), *group_progress(runs)


def _show_findings(group: str) -> None:
    findings = _findings(str(reference.REFERENCE_RUNS_DIR), group)
    if findings:
        st.markdown(
            "**What these runs show** (checked on their metrics):\n"
            + "\n".join(f"- {'✅' if c.holds else '❌'} {c.text} ({c.detail})" for c in findings)
        )


def degradation_section(runs_dir: str) -> None:
    """Fig. 6 with the shortcut toggle: off draws the plain nets (the
    deeper one trains worse), on the residual nets (the deeper one trains
    better), both all four."""
    st.subheader("The deeper plain net trains worse: the degradation problem")
    figures, source = _chart_runs(runs_dir)
    if not figures:
        st.info(
            "No runs to draw yet. Start one on the **Train & compare** page; "
            "the Quick demo takes a few minutes on a laptop CPU."
        )
        return
    shortcuts = st.segmented_control(
        "Shortcuts",
        SHORTCUT_CHOICES,
        required=True,
        key="home_shortcuts",
        persist_state="page",
        format_func=SHORTCUT_LABELS.get,
        help="Off: plain nets only; on: residual nets only; both: all of them.",
    )
    st.plotly_chart(figures[shortcuts], width="stretch", key="home_chart", config=chart_config("degradation"))
    st.caption(
        "Training error (thin, dashed) and test error (bold); hover for values, click a model in the legend to "
        f"hide it. The paper's Figure 6 draws these curves for its own runs. Drawn here: {source} "
        f"Source: {CITATION}."
    )
    _show_findings("fig6")


def shortcut_options_section() -> None:
    figure, note, reached, planned = _shipped_group(str(reference.REFERENCE_RUNS_DIR), "shortcuts")
    if figure is None:
        return
    st.subheader("Does the kind of shortcut matter? Options A, B and C")
    st.plotly_chart(figure, width="stretch", key="options_chart", config=chart_config("shortcut-options"))
    unfinished = f" Still training: epoch {reached} of {planned}." if reached < planned else ""
    st.caption(
        "The same recipe on plain-32 and resnet-32 with each of the paper's shortcut options (A and B from "
        "section 3.3, C from section 4.1): "
        "A adds the input unchanged and pads zeros where the shape changes (no parameters), B projects with a "
        "1×1 convolution only there, C projects on every shortcut. On ImageNet (Table 3, section 4.1) they differ "
        "little: "
        "34-layer plain 28.54%, A 25.03%, B 24.52%, C 24.19% top-1 error; projections are not what fixes "
        f"degradation. {note}{unfinished}"
    )
    _show_findings("shortcuts")


def where_to_go() -> None:
    st.markdown("#### Where to go")
    columns = st.columns(2)
    for index, page in enumerate(PAGES[1:]):
        with columns[index % 2]:
            st.page_link(page.script, label=page.blurb, icon=page.icon)


frame = page_frame("Home")
session_defaults(DEFAULTS)
st.title("ResNet Explorer")
st.markdown(INTRO)
degradation_section(frame.runs_dir)
shortcut_options_section()
where_to_go()
