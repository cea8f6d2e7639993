"""Train & compare: race plain and residual nets, watch Fig. 6 grow live."""

import streamlit as st

from resexplorer.data.sources import count_images
from resexplorer.errors import ResExplorerError
from resexplorer.nets.config import DEPTHS
from resexplorer.progress import format_duration
from resexplorer.runs.recipe import RunOptions, Setting, TrainConfig, settings, split_settings
from resexplorer.services.claims import FIG6_MODELS
from resexplorer.services.curves import curve_from_run, curves_csv, references_for
from resexplorer.services.figures import (
    chart_config,
    error_curves,
    figure_html,
    with_view,
)
from resexplorer.services.paper import CITATION
from resexplorer.services.planning import (
    NO_SHORTCUT,
    PRESETS,
    SHORTCUT_OPTIONS,
    ModelRow,
    all_model_names,
    default_settings,
    estimate_seconds,
    measure_layer_rate,
)
from resexplorer.services.reference import recipe_note, reference_runs
from resexplorer.services.server_policy import ServerPolicy
from resexplorer.system import resolve_device
from resexplorer.training.failures import Failure
from resexplorer.training.jobs import FINAL_STATES, Job, JobManager, JobState, queue_standing
from resexplorer.training.queue import training_queue
from ui.chart_view import kept_view
from ui.choices import LINKS_READ, Linked, read_link, write_link
from ui.sidebar import page_frame
from ui.text import literal

REFRESH_S = 2.0
LINKS = [Linked("preset", "preset", list(PRESETS))]  # and the model rows, as `models` (models_from_link)
MY_JOB = "job"  # the URL's and the session's key: the job this visitor started (a link or a refresh keeps it)
ROWS = "train_rows"  # session state: the row ids of the models, in order
NEXT_ROW = "train_row_last_id"  # session state: the last row id handed out
# Where the page has a better answer than the record's what_to_do: its sidebar.
FAILURE_HINTS = {
    "data": "Offline? Pick an image folder as the data source in the sidebar (train/ and test/ subfolders "
    "with one folder per class), or put a CIFAR-10 copy where the message says",
}
SHORTCUT_HELP = (
    "none: a plain net; A: identity shortcuts, zero-padded where the shape changes; "
    "B: projections there; C: projections everywhere"
)


@st.cache_resource(show_spinner="Measuring this device's speed…")
def _layer_rate() -> float:
    return measure_layer_rate(resolve_device("auto"))


@st.cache_data(show_spinner=False, ttl=30)
def _image_counts(source: str):
    try:
        return count_images(source)
    except ResExplorerError:
        return None


@st.cache_data(show_spinner=False, ttl=60)
def _reference_curves():
    return [curve_from_run(r) for r in reference_runs()]


@st.cache_data(show_spinner=False, ttl=60)
def _recipe_note(models: tuple[str, ...]) -> str:
    """What the faded reference runs of these models are."""
    return recipe_note([r for r in reference_runs() if r.config()["model_name"] in models])


# --- the models, as rows ---------------------------------------------------------------------
# Each row's depth, shortcut and zero-init live in its widgets' session state
# (keys "row:<id>:..."); ROWS keeps the order. Rows are added by writing
# those keys before the widgets are drawn.


def _key(row_id: int, field: str) -> str:
    return f"row:{row_id}:{field}"


def _add_row(row: ModelRow) -> None:
    # A fresh id each time, never reused: a removed row's widgets keep their state.
    row_id = st.session_state[NEXT_ROW] = st.session_state.get(NEXT_ROW, -1) + 1
    st.session_state[_key(row_id, "depth")] = row.depth
    st.session_state[_key(row_id, "shortcut")] = row.shortcut
    st.session_state[_key(row_id, "zero")] = row.zero_init
    st.session_state[ROWS].append(row_id)


def _row(row_id: int) -> ModelRow:
    shortcut = st.session_state[_key(row_id, "shortcut")]
    return ModelRow(
        st.session_state[_key(row_id, "depth")],
        shortcut,
        shortcut != NO_SHORTCUT and st.session_state[_key(row_id, "zero")],
    )


def _set_rows(names) -> None:
    st.session_state[ROWS] = []
    for name in names:
        _add_row(ModelRow.from_name(name))


def _chosen_models() -> list[str]:
    """The rows' model names, each once, in row order."""
    return list(dict.fromkeys(_row(row_id).name for row_id in st.session_state[ROWS]))


def models_from_link() -> None:
    """A link's models (`?models=plain-56,resnet-56`) become the rows, on the
    page's first draw in the session; names the app does not offer are said."""
    read = st.session_state.setdefault(LINKS_READ, set())
    if "train:models" in read:
        return
    read.add("train:models")  # read or not there: from now on the rows are the truth, and the URL follows them
    if "models" not in st.query_params:
        return
    asked = [name for name in st.query_params["models"].split(",") if name]
    offered = set(all_model_names())
    unknown = [name for name in asked if name not in offered]
    if unknown:
        st.warning(f"This link asks for models this app does not offer: {', '.join(unknown)}.")
    if any(name in offered for name in asked):
        _set_rows([name for name in asked if name in offered])


def models_to_link(models: list[str]) -> None:
    """The rows' models into the URL, as models_from_link reads them."""
    if models and st.query_params.get("models") != ",".join(models):
        st.query_params["models"] = ",".join(models)


def _on_preset() -> None:
    preset = PRESETS[st.session_state["preset"]]
    if preset.models:  # Custom keeps the rows as they are
        _set_rows(preset.models)


def _add_twins() -> None:
    present = set(_chosen_models())
    for row_id in list(st.session_state[ROWS]):
        twin = _row(row_id).twin()
        if twin.name not in present:
            _add_row(twin)
            present.add(twin.name)


def _add_model() -> None:
    last = _row(st.session_state[ROWS][-1]) if st.session_state[ROWS] else ModelRow(20, NO_SHORTCUT)
    _add_row(ModelRow(last.depth, "A"))


def _remove(row_id: int) -> None:
    st.session_state[ROWS].remove(row_id)


def _on_names() -> None:
    _set_rows(st.session_state["models_by_name"])


def model_rows(preset_models) -> list[str]:
    """A row per model: depth (6n+2), shortcut (none / A / B / C), zero-init
    for residual nets, remove. Returns the chosen model names."""
    if ROWS not in st.session_state:
        st.session_state[ROWS] = []
        _set_rows(preset_models or ["plain-20", "resnet-20"])
    for row_id in st.session_state[ROWS]:
        depth, shortcut, zero, remove, _ = st.columns([1, 1.5, 0.8, 0.35, 2.5], vertical_alignment="bottom")
        depth.selectbox("Depth (6n+2)", DEPTHS, key=_key(row_id, "depth"), persist_state="session")
        chosen = shortcut.segmented_control(
            "Shortcut",
            SHORTCUT_OPTIONS,
            required=True,
            key=_key(row_id, "shortcut"),
            persist_state="session",
            help=SHORTCUT_HELP,
        )
        zero.checkbox(
            "zero-init",
            key=_key(row_id, "zero"),
            persist_state="session",
            disabled=chosen == NO_SHORTCUT,
            help="Every residual branch's last BN starts at zero, so each block starts as the identity (F(x) = 0).",
        )
        remove.button("✕", key=_key(row_id, "remove"), on_click=_remove, args=(row_id,), help="Remove this model")
    add, twins, _ = st.columns([1, 1.6, 3])
    add.button("Add a model", key="add_model", on_click=_add_model)
    twins.button(
        "Add each model's twin",
        key="add_twins",
        on_click=_add_twins,
        help="plain-56 gets resnet-56, and resnet-56 gets plain-56: the same depth with and without shortcuts.",
    )
    models = _chosen_models()
    with st.expander("Advanced: models by name"):
        st.session_state["models_by_name"] = models
        st.multiselect(
            "Models (plain = no shortcuts; A/B/C = shortcut option; -zero = residual branches start at zero)",
            all_model_names(),
            key="models_by_name",
            on_change=_on_names,
        )
    if not models:
        st.info("Add a model to train.")
    return models


def _setting_widget(column, setting: Setting, default, key: str):
    """The widget of one training setting, from its label, bounds and
    choices; a number of images shows 0 for None (all of them)."""
    if setting.choices:
        return column.selectbox(
            setting.label, setting.choices, index=setting.choices.index(default), key=key, help=setting.help
        )
    low, high = setting.bounds
    if setting.kind is float:
        return float(column.number_input(setting.label, low, high, float(default), format="%.4f", key=key))
    if setting.optional:  # a number of images
        return int(column.number_input(setting.label, low, high, default or 0, step=1000, key=key)) or None
    return int(column.number_input(setting.label, low, high, default, key=key))


def training_settings(defaults: dict, preset_name: str) -> tuple[TrainConfig, RunOptions]:
    """The recipe and the run options from the settings that carry a label
    (epochs, batch, lr, schedule, subsets, seed, compile), each remembered
    per preset; the rest keep their defaults."""
    shown = [s for s in settings() if s.label]
    per_row = 4  # eight settings in one row squeeze their labels
    chosen = {}
    for start in range(0, len(shown), per_row):
        for setting, column in zip(shown[start : start + per_row], st.columns(per_row)):
            default = defaults.get(setting.name, setting.default)  # a preset names what it changes
            chosen[setting.name] = _setting_widget(column, setting, default, f"{setting.name}:{preset_name}")
    return split_settings(chosen)


def expected_duration(
    models: list[str], config: TrainConfig, counts, device_kind: str, data_source: str
) -> float | None:
    """Says how long the job would take; returns the estimate (seconds)."""
    if counts is None:
        st.warning(f"The data source {data_source!r} is not usable here: pick one in the sidebar.")
    elif models:
        n_train = min(counts[0], config.train_subset or counts[0])
        n_test = min(counts[1], config.test_subset or counts[1])
        seconds = estimate_seconds(models, config.epochs, n_train, n_test, _layer_rate())
        st.markdown(
            f"Expected duration on this {device_kind.upper()}: **about {format_duration(seconds)}** "
            f"({len(models)} models × {config.epochs} epochs × {n_train:,} images, testing on {n_test:,})."
        )
        return seconds
    return None


def within_caps(policy: ServerPolicy, models: list[str], config: TrainConfig, counts) -> bool:
    """On a shared server: the caps its operator set, said before Start,
    and whether this job keeps within them (always, elsewhere)."""
    if not policy.shared:
        return True
    n_train = min(counts[0], config.train_subset or counts[0]) if counts else config.train_subset or 0
    problems = policy.job_problems(len(models), config.epochs, n_train)
    st.caption(f"On this shared server a job may train {policy.caps_text()}.")
    if problems:
        st.warning(f"This job asks for {', '.join(problems)}: make it smaller to start it here.")
    return not problems


def my_job(manager: JobManager) -> Job | None:
    """The job this visitor started, as the URL (or, before it, the session) names it."""
    job_id = st.query_params.get(MY_JOB) or st.session_state.get(MY_JOB)
    return manager.job(job_id) if job_id else None


def _ordinal(n: int) -> str:
    return "next" if n == 1 else f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def queue_status(job: Job) -> None:
    """Where the visitor's queued job stands, and when it should start."""
    training_queue().ensure_runner()  # a runner killed, or a machine restarted with jobs waiting: start one
    standing = queue_standing(job)
    if standing is None:
        st.info("Your job is next: it starts as soon as the device is free.")
        return
    ahead = []
    if standing.waiting_ahead:
        ahead.append(f"{standing.waiting_ahead} queued")
    if standing.training:
        ahead.append(f"{standing.training} training")
    when = (
        f"It should start in **about {format_duration(standing.starts_in_s)}** (from the estimates of the jobs ahead)."
        if standing.starts_in_s is not None
        else "A job ahead has no estimate, so its start time is not known."
    )
    st.info(
        f"Your job is queued: **{_ordinal(standing.place)} in line**"
        + (f" ({' and '.join(ahead)} ahead of it). " if ahead else ". ")
        + when
        + " It starts by itself when the machine frees; you can close this page and come back to this link."
    )


def start_and_stop(
    manager: JobManager,
    models: list[str],
    config: TrainConfig,
    options: RunOptions,
    data_source: str,
    usable: bool,
    estimate_s: float | None,
) -> None:
    """Start queues the job (it starts at once on a free machine); Stop
    stops the visitor's own job, or takes it out of the queue, else the job
    training now."""
    mine = my_job(manager)
    mine_active = mine is not None and mine.active
    target = mine if mine_active else manager.active()
    queued = target is not None and target.status()["state"] == JobState.QUEUED
    start_col, stop_col, _ = st.columns([1, 1, 4])
    if start_col.button("Start", type="primary", disabled=not models or not usable, key="start"):
        try:
            job = manager.start_training(models, data_source, config, options=options, estimate_s=estimate_s)
            st.session_state[MY_JOB] = st.query_params[MY_JOB] = job.job_id
            st.session_state["watching"] = True
            st.rerun()
        except ResExplorerError as err:
            st.error(literal(str(err)))
    stop_help = (
        "Takes your job out of the queue."
        if queued
        else "Stops within one step; completed epochs are kept and can be resumed."
    )
    if stop_col.button("Leave the queue" if queued else "Stop", disabled=target is None, key="stop", help=stop_help):
        target.cancel()
        st.toast("Your job left the queue." if queued else "Stopping: the job ends within one step.")
        if queued:
            st.rerun()


def chart_options() -> dict:
    opts = st.columns(4)
    return {
        "x_axis": opts[0].radio("x axis", ["epoch", "iteration"], horizontal=True, key="x_axis"),
        "log_y": opts[1].toggle("Log scale", key="log_y"),
        "paper_markers": opts[2].toggle(
            "Paper markers",
            key="paper_markers",
            help="Table 6 ResNet test errors and Fig. 6 plain-net read-offs (original CIFAR-10)",
        ),
        "show_reference": opts[3].toggle("Reference runs underneath", value=True, key="show_reference"),
    }


def _explain_failure(failure: Failure) -> None:
    st.error(literal(f"The job failed: {failure.message}"))
    hint = FAILURE_HINTS.get(failure.kind, failure.what_to_do)
    if hint:
        st.info(hint[0].upper() + hint[1:] + ".")


def _job_status(status: dict) -> None:
    state = status["state"]
    step, total = status.get("step", 0), status.get("total_steps", 0)
    if state in (JobState.STARTING, JobState.RUNNING):
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
    elif state == JobState.FAILED:
        _explain_failure(Failure.from_dict(status.get("failure", {"message": status.get("message", "")})))
    elif state == JobState.DONE:
        st.success(f"Job done: {step:,} of {total:,} steps.")
    else:
        st.info(f"Job {state} after {step:,} of {total:,} steps; resume it from the Runs page.")
    devices = status.get("devices", {})
    if len(set(devices.values())) > 1:  # a race spread over several GPUs
        st.caption("Where each model trains: " + " · ".join(f"{name} on {where}" for name, where in devices.items()))
    for name, outcome in status.get("statuses", {}).items():
        if outcome["status"] == "diverged":
            st.warning(f"{name} diverged: {outcome['message']}")


def _draw(curves, faded, options: dict, job_id: str = "") -> None:
    """The live chart, drawn with the user's zoom, pan and hidden legend
    entries of its last refresh (ui/chart_view.py); a new choice of axes
    starts afresh (a zoom in epochs means nothing in iterations), and so
    does a new job: its axis fits it, whatever the last job's view was."""
    revision = f"{options['x_axis']}-{'log' if options['log_y'] else 'linear'}-{job_id}"
    fig = error_curves(
        curves,
        x_axis=options["x_axis"],
        log_y=options["log_y"],
        paper_markers=options["paper_markers"],
        faded=faded,
        uirevision=revision,  # plotly's own keeper, for a Streamlit that keeps the chart mounted
    )
    fig = with_view(fig, kept_view("live_chart", revision))
    st.plotly_chart(fig, width="stretch", key="live_chart", config=chart_config("error-curves"))


def live_view(manager: JobManager, models: list[str], options: dict) -> None:
    # Always polling (a few small file reads): a job started from another tab
    # or the command line shows up here too.
    @st.fragment(run_every=REFRESH_S)
    def _live() -> None:
        mine = my_job(manager)
        if mine is not None and mine.status()["state"] == JobState.QUEUED:
            queue_status(mine)
            st.session_state["queued"] = True
            job = manager.latest()  # meanwhile, what trains now (or last did)
            if job is not None:
                st.caption("Meanwhile, the latest job of this runs folder (not yours):")
        else:
            if st.session_state.pop("queued", False):
                st.rerun()  # the job started or left: the whole page once more (its Stop button)
            job = mine or manager.latest()
        references = _reference_curves() if options["show_reference"] else []
        if job is None:
            # the chosen models' shipped runs, so a preset shows its finding before anything trains
            faded = references_for(models, references, FIG6_MODELS)
            shown = ", ".join(c.model for c in faded)
            st.info(
                "No job yet: choose a preset and press Start."
                + (f" Meanwhile, the shipped reference runs of {shown}:" if faded else "")
            )
            if faded:
                _draw([], faded, options)
                st.caption(_recipe_note(tuple(c.model for c in faded)))
            return
        status = job.status()
        _job_status(status)
        if status["state"] in FINAL_STATES and st.session_state.pop("watching", False):
            st.rerun()  # redraw the whole page once: Start/Stop states change
        runs = job.runs()
        curves = [c for c in (curve_from_run(r) for r in runs) if not c.empty]
        faded = references_for([r.config()["model_name"] for r in runs], references, FIG6_MODELS)
        if curves or faded:
            _draw(curves, faded, options, job.job_id)
            underneath = (
                f" over the shipped reference runs of {', '.join(c.model for c in faded)} (faded). "
                + _recipe_note(tuple(c.model for c in faded))
                if faded
                else "."
            )
            st.caption(
                f"Curves from this job's runs{underneath} The camera icon above the chart saves it as a PNG. "
                f"Paper: {CITATION}."
            )
        if not curves:
            st.caption("The first points appear after the first logged steps.")

    _live()


def downloads(manager: JobManager, options: dict) -> None:
    """On full reruns only, not rebuilt every refresh; drawn on click."""
    latest = manager.latest()
    if latest is None or not latest.runs():
        return
    runs = latest.runs()

    def page() -> str:
        curves = [c for c in (curve_from_run(r) for r in runs) if not c.empty]
        fig = error_curves(
            curves, x_axis=options["x_axis"], log_y=options["log_y"], paper_markers=options["paper_markers"]
        )
        return figure_html(fig, "Error curves")

    left, right, _ = st.columns([1, 1, 3])
    left.download_button("Chart (HTML)", page, file_name="error-curves.html", mime="text/html", key="dl_html")
    right.download_button(
        "Metrics (CSV)", lambda: curves_csv(runs), file_name="metrics.csv", mime="text/csv", key="dl_csv"
    )


frame = page_frame("Train & compare")
manager = JobManager(frame.runs_dir)
st.title("Train & compare")
st.markdown(
    "Pick nets, press **Start**, and watch their error curves grow together, as in the paper's "
    "Figure 6: training error thin and dashed, test error bold, one colour per model. All models "
    "in a job train in lockstep on identical batches. Switch a model's shortcut off and on to "
    "compare the same depth with and without it."
)
device_kind = resolve_device("auto").type  # cuda, mps or cpu: decides the defaults
read_link("train", LINKS)
models_from_link()
preset_name = st.selectbox("Preset", list(PRESETS), key="preset", on_change=_on_preset)
preset = PRESETS[preset_name]
st.caption(preset.blurb)
chosen_models = model_rows(preset.models)
write_link(LINKS)
models_to_link(chosen_models)
config, options = training_settings({**default_settings(device_kind), **dict(preset.overrides)}, preset_name)
counts = _image_counts(frame.data_source)
estimate = expected_duration(chosen_models, config, counts, device_kind, frame.data_source)
allowed = within_caps(frame.policy, chosen_models, config, counts)
start_and_stop(manager, chosen_models, config, options, frame.data_source, counts is not None and allowed, estimate)
shown = chart_options()
live_view(manager, chosen_models, shown)
downloads(manager, shown)
