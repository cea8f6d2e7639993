"""Home: what the app shows, and the paper's point at first sight."""

import streamlit as st

from resexplorer import reference
from resexplorer.claims import claims_of_runs
from resexplorer.curves import curve_from_run
from resexplorer.errors import ResExplorerError
from resexplorer.figures import error_curves
from resexplorer.paper import CITATION
from resexplorer.reference import reference_runs
from resexplorer.runs import RunStore

st.title("ResNet Explorer")
st.markdown(
    "Stack more layers on a plain convolutional net and, past a point, it gets **worse even on "
    "its training data**: He et al. called this the *degradation problem*. Their fix is a "
    "shortcut around every pair of layers, so each block only learns a residual *F(x)* that is "
    "added to its input; where the identity is already nearly right, *F(x)* can stay close to "
    "zero. Here you train plain and residual CIFAR-10 nets side by side, live, and look inside them."
)


@st.cache_data(show_spinner=False, ttl=5)
def _chart_runs(runs_dir: str):
    """Shipped reference runs of Fig. 6, else the latest runs of the runs folder."""
    shipped = reference_runs("fig6")
    if shipped:
        return [curve_from_run(r) for r in shipped], "the shipped reference runs (CIFAR-10, JPEG copy)"
    try:
        latest = RunStore(runs_dir).list()[-4:]
    except ResExplorerError:
        latest = []
    return [curve_from_run(r) for r in latest], f"your latest runs in {runs_dir}"


@st.cache_data(show_spinner=False, ttl=60)
def _findings(shipped_dir: str, group: str):
    """The paper's findings on a shipped group (empty while it does not
    ship); keyed by their folder so a moved folder is read afresh."""
    try:
        return claims_of_runs(reference_runs(group), group)
    except ValueError:  # a model of the group is missing
        return []


@st.cache_data(show_spinner=False, ttl=60)
def _shipped_group(shipped_dir: str, group: str):
    """The group's curves, and the epochs its runs have reached of how many
    (a group still being built ships part-trained between sittings)."""
    runs = reference_runs(group)
    reached = min((_last_epoch(r) for r in runs), default=0)
    planned = max((r.config()["train"]["epochs"] for r in runs), default=0)
    return [curve_from_run(r) for r in runs], reached, planned


def _last_epoch(run) -> int:
    records = run.metrics("epoch")
    return records[-1]["epoch"] if records else 0


def _show_findings(group: str) -> None:
    findings = _findings(str(reference.REFERENCE_RUNS_DIR), group)
    if findings:
        st.markdown("**What these runs show** (checked on their metrics):\n" + "\n".join(f"- {'✅' if c.holds else '❌'} {c.text} ({c.detail})" for c in findings))


curves, source = _chart_runs(st.session_state.get("runs_dir", "runs"))
curves = [c for c in curves if not c.empty]
st.subheader("The deeper plain net trains worse: the degradation problem")
if curves:
    st.vega_lite_chart(error_curves(curves), width="stretch", key="home_chart")
    st.caption(
        f"Training error (thin, dashed) and test error (bold) of {source}; hover for values, click a model in the legend to pick it out. The paper's Figure 6 draws "
        f"the same curves over 64k iterations. Source: {CITATION}."
    )
    _show_findings("fig6")
else:
    st.info("No runs to draw yet. Start one on the **Train & compare** page; the Quick demo takes a few minutes on a laptop CPU.")

option_curves, reached, planned = _shipped_group(str(reference.REFERENCE_RUNS_DIR), "shortcuts")
if option_curves:
    st.subheader("Does the kind of shortcut matter? Options A, B and C")
    st.vega_lite_chart(error_curves(option_curves), width="stretch", key="options_chart")
    unfinished = f" Still training: epoch {reached} of {planned}." if reached < planned else ""
    st.caption(
        "The same recipe on plain-32 and resnet-32 with each of the paper's shortcut options (section 3.3): "
        "A adds the input unchanged and pads zeros where the shape changes (no parameters), B projects with a "
        "1×1 convolution only there, C projects on every shortcut. On ImageNet (Table 3) they differ little: "
        f"34-layer plain 28.54%, A 25.03%, B 24.52%, C 24.19% top-1 error; projections are not what fixes degradation.{unfinished}"
    )
    _show_findings("shortcuts")

st.markdown("#### Where to go")
links = [
    ("views/train.py", "Train & compare: race plain and residual nets live (Fig. 6)", ":material/monitoring:"),
    ("views/inside.py", "Inside the nets: responses, residual branches, lesions, landscapes", ":material/biotech:"),
    ("views/attributions.py", "Attributions: what plain and residual nets look at", ":material/visibility:"),
    ("views/tta.py", "Test-time augmentation: on your photos and the test set", ":material/flip:"),
    ("views/runs.py", "Runs: compare, export, delete and resume runs", ":material/folder_open:"),
]
columns = st.columns(2)
for index, (page, label, icon) in enumerate(links):
    with columns[index % 2]:
        st.page_link(page, label=label, icon=icon)
