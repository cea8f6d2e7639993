"""Train & compare: race plain and residual nets, watch Fig. 6 grow live."""

import streamlit as st

from resexplorer.claims import FIG6_MODELS
from resexplorer.curves import curve_from_run, curves_csv, references_for
from resexplorer.data import count_images
from resexplorer.errors import ResExplorerError
from resexplorer.figures import error_curves, error_curves_png, spec_html
from resexplorer.jobs import JobBusy, JobManager
from resexplorer.paper import CITATION
from resexplorer.planning import (
    PRESETS,
    all_model_names,
    default_settings,
    estimate_seconds,
    format_duration,
    measure_layer_rate,
)
from resexplorer.reference import reference_runs
from resexplorer.train import SCHEDULES, resolve_device

REFRESH_S = 2.0
data_source = st.session_state.get("data_source", "cifar10")
runs_dir = st.session_state.get("runs_dir", "runs")
manager = JobManager(runs_dir)


@st.cache_resource(show_spinner="Measuring this device's speed…")
def _layer_rate() -> float:
    return measure_layer_rate(resolve_device("auto"))


@st.cache_data(show_spinner=False, ttl=30)
def _image_counts(source: str):
    try:
        return count_images(source)
    except ResExplorerError:
        return None


st.title("Train & compare")
st.markdown(
    "Pick nets, press **Start**, and watch their error curves grow together, as in the paper's "
    "Figure 6: training error thin and dashed, test error bold, one colour per model. All models "
    "in a job train in lockstep on identical batches."
)

# --- what to train -----------------------------------------------------------------
device_kind = resolve_device("auto").type  # cuda, mps or cpu: decides the defaults
preset_name = st.selectbox("Preset", list(PRESETS), key="preset")
preset = PRESETS[preset_name]
st.caption(preset.blurb)
defaults = {**default_settings(device_kind), **dict(preset.overrides)}
models = st.multiselect(
    "Models (plain = no shortcuts; A/B/C = shortcut option; -zero = residual branches start at zero)",
    all_model_names(),
    default=list(preset.models) or ["plain-20", "resnet-20"],
    key=f"models:{preset_name}",
)

cols = st.columns(7)
epochs = cols[0].number_input("Epochs", 1, 500, defaults["epochs"], key=f"epochs:{preset_name}")
batch_size = cols[1].number_input("Batch size", 2, 4096, defaults["batch_size"], key=f"batch:{preset_name}")
lr = cols[2].number_input("Learning rate", 1e-5, 10.0, float(defaults["lr"]), format="%.4f", key=f"lr:{preset_name}")
schedule = cols[3].selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(defaults["schedule"]), key=f"schedule:{preset_name}", help="paper: lr / 10 at 50% and 75% of the run")
train_subset = cols[4].number_input("Train images (0 = all)", 0, 10_000_000, defaults["train_subset"] or 0, step=1000, key=f"train_subset:{preset_name}")
test_subset = cols[5].number_input("Test images (0 = all)", 0, 10_000_000, defaults["test_subset"] or 0, step=1000, key=f"test_subset:{preset_name}")
seed = cols[6].number_input("Seed", 0, 2**31 - 1, defaults["seed"], key=f"seed:{preset_name}")

counts = _image_counts(data_source)
if counts is None:
    st.warning(f"The data source {data_source!r} is not usable here: pick one in the sidebar.")
elif models:
    n_train = min(counts[0], train_subset or counts[0])
    n_test = min(counts[1], test_subset or counts[1])
    seconds = estimate_seconds(models, int(epochs), n_train, n_test, _layer_rate())
    st.markdown(f"Expected duration on this {device_kind.upper()}: **about {format_duration(seconds)}** ({len(models)} models × {int(epochs)} epochs × {n_train:,} images, testing on {n_test:,}).")

# --- start and stop ---------------------------------------------------------------------
active = manager.active()
start_col, stop_col, _ = st.columns([1, 1, 4])
if start_col.button("Start", type="primary", disabled=not models or counts is None, key="start"):
    options = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "schedule": schedule,
        "train_subset": int(train_subset) or None,
        "test_subset": int(test_subset) or None,
        "seed": int(seed),
    }
    try:
        manager.start_training(list(models), data_source, options)
        st.session_state["watching"] = True
        st.rerun()
    except JobBusy as err:
        st.warning(str(err))
    except ResExplorerError as err:
        st.error(str(err))
if stop_col.button("Stop", disabled=active is None, key="stop", help="Stops within one step; completed epochs are kept and can be resumed."):
    active.cancel()
    st.toast("Stopping: the job ends within one step.")

# --- the chart's options ------------------------------------------------------------------
opts = st.columns(4)
x_axis = opts[0].radio("x axis", ["epoch", "iteration"], horizontal=True, key="x_axis")
log_y = opts[1].toggle("Log scale", key="log_y")
paper_markers = opts[2].toggle("Paper markers", key="paper_markers", help="Table 6 ResNet test errors and Fig. 6 plain-net read-offs (original CIFAR-10)")
show_reference = opts[3].toggle("Reference runs underneath", value=True, key="show_reference")


@st.cache_data(show_spinner=False, ttl=60)
def _reference_curves():
    return [curve_from_run(r) for r in reference_runs()]


def _explain_failure(status: dict) -> None:
    message = status.get("message", "")
    st.error(f"The job failed: {message}")
    lowered = message.lower()
    if "cifar-10" in lowered:
        st.info("Offline? Pick an image folder as the data source in the sidebar, or put a CIFAR-10 copy where the message says.")
    elif "out of memory" in lowered:
        st.info("Try a smaller batch size or fewer models at once.")
    elif "folder" in lowered:
        st.info("Check the image folder in the sidebar: it needs train/ and test/ subfolders with one folder per class.")


# Always polling (a few small file reads): a job started from another tab or
# the command line shows up here too.
@st.fragment(run_every=REFRESH_S)
def live_view() -> None:
    job = manager.latest()
    references = _reference_curves() if show_reference else []
    if job is None:
        # the chosen models' shipped runs, so a preset shows its finding before anything trains
        faded = references_for(models, references, FIG6_MODELS)
        shown = ", ".join(c.model for c in faded)
        st.info("No job yet: choose a preset and press Start." + (f" Meanwhile, the shipped reference runs of {shown}:" if faded else ""))
        if faded:
            st.vega_lite_chart(error_curves([], x_axis=x_axis, log_y=log_y, faded=faded), width="stretch", key="live_chart")
        return
    status = job.status()
    state = status["state"]
    step, total = status.get("step", 0), status.get("total_steps", 0)
    if state in ("starting", "running"):
        rate = status.get("images_per_s")
        eta = status.get("eta_s")
        text = f"{state}: {status.get('message', '')}"
        if total:
            text = f"step {step:,} / {total:,}"
            if rate:
                text += f" · {rate:,.0f} images/s"
            if eta is not None:
                text += f" · about {format_duration(eta)} left"
        st.progress(min(1.0, step / total) if total else 0.0, text=text)
    elif state == "failed":
        _explain_failure(status)
    elif state == "done":
        st.success(f"Job done: {step:,} of {total:,} steps.")
    else:
        st.info(f"Job {state} after {step:,} of {total:,} steps; resume it from the Runs page.")
    if state in ("done", "cancelled", "failed"):
        if st.session_state.pop("watching", False):
            st.rerun()  # redraw the whole page once: Start/Stop states change
    for name, outcome in status.get("statuses", {}).items():
        if outcome["status"] == "diverged":
            st.warning(f"{name} diverged: {outcome['message']}")
    runs = job.runs()
    curves = [c for c in (curve_from_run(r) for r in runs) if not c.empty]
    faded = references_for([r.config()["model_name"] for r in runs], references, FIG6_MODELS)
    if curves or faded:
        fig = error_curves(curves, x_axis=x_axis, log_y=log_y, paper_markers=paper_markers, faded=faded)
        st.vega_lite_chart(fig, width="stretch", key="live_chart")
        underneath = f" over the shipped reference runs of {', '.join(c.model for c in faded)} (faded)" if faded else ""
        st.caption(f"Curves from this job's runs{underneath}. Paper: {CITATION}.")
    if not curves:
        st.caption("The first points appear after the first logged steps.")


live_view()

# --- downloads (full reruns only: not rebuilt every refresh) ---------------------------------
latest = manager.latest()
if latest is not None and latest.runs():
    runs = latest.runs()
    curves = [curve_from_run(r) for r in runs]
    fig = error_curves(curves, x_axis=x_axis, log_y=log_y, paper_markers=paper_markers)
    d1, d2, d3, _ = st.columns([1, 1, 1, 2])
    d1.download_button("Chart (PNG)", lambda: error_curves_png([c for c in curves if not c.empty]), file_name="error-curves.png", mime="image/png", key="dl_png")  # drawn on click
    d2.download_button("Chart (HTML)", spec_html(fig, "Error curves"), file_name="error-curves.html", mime="text/html", key="dl_html")
    d3.download_button("Metrics (CSV)", curves_csv(runs), file_name="metrics.csv", mime="text/csv", key="dl_csv")
