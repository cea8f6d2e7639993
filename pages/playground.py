"""Playground: deep plain and residual nets train live on 2-D points, so the
shortcut's effect shows in seconds on any laptop. The whole experiment is
in the page's URL, so a link reproduces it."""

import time

import streamlit as st

from resexplorer.data.points import GENERATORS
from resexplorer.errors import ConfigError
from resexplorer.nets.mlp import MIN_DEPTH
from resexplorer.services import playground_figures as figures
from resexplorer.services.catalog import SHORTCUT_LABELS  # the toggle reads the same everywhere
from resexplorer.services.figures import chart_config
from resexplorer.training.playground import (
    BATCH_SIZES,
    LEARNING_RATES,
    MAX_PLAYGROUND_DEPTH,
    NOISE_STEP,
    OPTIMIZERS,
    SERVER_SLOTS,
    SHORTCUTS,
    STEP_CAP,
    WIDTHS,
    PlaygroundConfig,
    PlaygroundRunner,
)
from ui.live_charts import live_charts
from ui.sidebar import page_frame
from ui.text import literal

WAIT_SAID_S = 1.0  # a wait for a slot is said once it lasts this long (a start takes a moment too)
REFRESH_S = 0.4  # asked this long after the last redraw ends: twice a second or more (bench/playground_speed.py)
RUNNER = "playground_runner"  # session state: this session's PlaygroundRunner
KEY = "pg_"  # widget keys: KEY + the PlaygroundConfig field
DATA_NAMES = {"spirals": "Two spirals", "moons": "Moons", "circles": "Circles", "xor": "XOR", "blobs": "Gaussian blobs"}
INTRO = (
    "A net of two-dimensional points, built like the paper's CIFAR nets: a stem, blocks of "
    "Linear-BN-ReLU-Linear-BN whose output is added to the block's input when the shortcut is on, and a "
    "linear head. With **both**, the plain net and its residual twin start from the same weights and see the "
    "same mini-batches, so the shortcut is the only difference. Change any setting and it starts again."
)
HONEST = (
    "What this shows, and what it does not: the paper's degradation problem in miniature, on toy data. Batch "
    "norm is on by default, so the forward signal does not vanish, yet the deep plain net still trains "
    "worse than a shallow one, and worse than the same net with shortcuts: an optimisation difficulty, not "
    "overfitting (its training error is high too). These are 2-D points and small MLPs, not CIFAR-10 "
    "convolutional nets; the Train & compare page trains those."
)


def _settings_from_url() -> list[str]:
    """On the session's first run, the widgets start from the URL (a shared
    link, a bookmark, a refresh); what it holds that cannot be used is said."""
    config, problems = PlaygroundConfig.from_query(st.query_params.to_dict())
    _fill_widgets(config)
    return problems


def _fill_widgets(config: PlaygroundConfig) -> None:
    """Widgets without a value take the experiment's: Streamlit forgets a
    widget's value when its page is left, so coming back finds the
    experiment still training with its settings, not the widgets' defaults."""
    for name, value in config.__dict__.items():
        st.session_state.setdefault(KEY + name, value)


def settings() -> PlaygroundConfig:
    """The experiment the widgets describe."""
    data_col, noise_col, seed_col = st.columns([2, 2, 1])
    data = data_col.selectbox("Data", list(GENERATORS), format_func=DATA_NAMES.get, key=KEY + "data")
    noise = noise_col.slider("Noise", 0.0, 0.5, step=NOISE_STEP, key=KEY + "noise")
    seed = seed_col.number_input("Seed", 0, 2**31 - 1, step=1, key=KEY + "seed")
    depth_col, width_col, shortcut_col = st.columns([3, 2, 2])
    depth = depth_col.slider(
        "Depth (linear layers)",
        MIN_DEPTH,
        MAX_PLAYGROUND_DEPTH,
        step=2,
        key=KEY + "depth",
        help="2 per block, plus the stem and the head.",
    )
    width = width_col.select_slider("Width", list(WIDTHS), key=KEY + "width")
    shortcut = shortcut_col.segmented_control(
        "Shortcut", list(SHORTCUTS), format_func=SHORTCUT_LABELS.get, key=KEY + "shortcut", required=True
    )
    bn_col, zero_col, opt_col, lr_col, batch_col = st.columns([1, 1, 1, 2, 2])
    batch_norm = bn_col.toggle("Batch norm", key=KEY + "batch_norm")
    zero_init = zero_col.toggle(
        "Zero-init",
        key=KEY + "zero_init",
        help="Each residual branch's last BN starts at zero: blocks start as the identity.",
    )
    optimizer = opt_col.radio("Optimiser", list(OPTIMIZERS), format_func=str.upper, key=KEY + "optimizer")
    lr = lr_col.select_slider("Learning rate", list(LEARNING_RATES), key=KEY + "lr")
    batch_size = batch_col.select_slider("Batch size", list(BATCH_SIZES), key=KEY + "batch_size")
    return PlaygroundConfig(
        data,
        float(noise),
        int(seed),
        int(depth),
        int(width),
        shortcut,
        batch_norm,
        zero_init,
        optimizer,
        lr,
        int(batch_size),
    )


def runner_for(config: PlaygroundConfig) -> PlaygroundRunner:
    """This session's training of this experiment: a new one (playing) when
    the settings changed, and the URL says them."""
    runner = st.session_state.get(RUNNER)
    if runner is None or runner.config != config:
        if runner is not None:
            runner.stop()
        runner = PlaygroundRunner(config)
        runner.play()
        st.session_state[RUNNER] = runner
    if st.query_params.to_dict() != config.to_query():
        st.query_params.from_dict(config.to_query())
    runner.seen()  # back from another page: an experiment that stopped while away plays on
    return runner


def controls(runner: PlaygroundRunner) -> None:
    play_col, step_col, reset_col, _ = st.columns([1, 1, 1, 5])
    playing = runner.state in ("playing", "waiting", "away")
    if play_col.button(
        "Pause" if playing else "Play",
        key="pg_play",
        type="primary",
        disabled=runner.state in ("done", "stopped") and not playing,
    ):
        runner.pause() if playing else runner.play()
        st.rerun()
    if step_col.button("Step", key="pg_step", disabled=playing, help="One step, while paused."):
        runner.step_once()
    if reset_col.button("Reset", key="pg_reset", help="Start this experiment again from its first step."):
        runner.stop()
        st.session_state[RUNNER] = fresh = PlaygroundRunner(runner.config)
        fresh.play()
        st.rerun()


def _buttons(state: str) -> str:
    """What the Play button offers in a state: a change redraws the page."""
    return {"playing": "pause", "waiting": "pause", "paused": "play", "away": "pause"}.get(state, "none")


def status_line(runner: PlaygroundRunner) -> None:
    step = runner.snapshot["step"]
    if runner.state == "waiting" and runner.waiting_since and time.monotonic() - runner.waiting_since > WAIT_SAID_S:
        st.warning(
            f"Waiting for a free slot: this server trains {SERVER_SLOTS.size} playground experiment(s) at once, "
            "and all are busy. It starts by itself as soon as one frees."
        )
    elif runner.state == "stopped":
        st.info(f"Stopped at step {step}. Press Reset to train again.")
    elif runner.state == "done":
        st.caption(f"Done: step {step} of {STEP_CAP}. Reset starts again; any setting starts a new experiment.")
    else:
        rate = f", {runner.steps_per_s:,.0f} steps/s" if runner.state == "playing" and runner.steps_per_s else ""
        state = "Playing" if runner.state in ("waiting", "away") else runner.state.capitalize()
        st.caption(f"{state}: step {step} of {STEP_CAP}{rate}.")


def charts(runner: PlaygroundRunner, show_test: bool) -> None:
    """Three charts, redrawn in place (ui/live_charts.py): the surfaces,
    the curves, and inside the nets."""
    snapshot = runner.snapshot
    points = runner.race.point_lists
    live_charts(
        [
            figures.surfaces(snapshot, points["train"], points["test"] if show_test else None),
            figures.curves(snapshot),
            figures.inside(snapshot),
        ],
        [chart_config(f"playground-{name}") for name in ("surfaces", "curves", "inside")],
        key="pg_charts",
    )
    st.caption(
        "Left: the gradient of each layer's weights in the last step, input (stem) to output (head): where the "
        "plain net's gradients shatter or explode. Right: how much each block changes what reaches it, "
        "||F(x)|| / ||x|| over the training points; the residual branches stay small (f(x) close to 0 where the "
        "identity is near optimal)."
    )


def starting_values() -> None:
    """The widgets' values: on the session's first run from the link (and
    what it holds that cannot be used is said), after that from the
    experiment under way."""
    if RUNNER not in st.session_state:
        for problem in _settings_from_url():
            st.warning(literal(f"The link's {problem}; its default is used."))
    else:
        _fill_widgets(st.session_state[RUNNER].config)


def experiment() -> PlaygroundConfig:
    try:
        return settings()
    except ConfigError as err:  # the widgets offer only valid values; said, not raised, if one slips through
        st.error(literal(str(err)))
        st.stop()


def view_options() -> bool:
    """How the charts are drawn (not the experiment, so not in the URL);
    returns whether to show the test points."""
    return st.toggle("Show test points", key="pg_show_test")


def live_view(show_test: bool, drawn_state: str) -> None:
    """The status and the charts, redrawn twice a second from the runner's
    latest snapshot; the page's visit keeps the runner's session alive."""

    @st.fragment(run_every=REFRESH_S)
    def _live() -> None:
        runner = st.session_state[RUNNER]
        runner.seen()
        if _buttons(runner.state) != _buttons(drawn_state):
            st.rerun(scope="app")  # the buttons outside change too: Play, not Pause
        status_line(runner)
        charts(runner, show_test)

    _live()


frame = page_frame("Playground")
st.title("Playground")
st.markdown(INTRO)
starting_values()
runner = runner_for(experiment())
controls(runner)
live_view(view_options(), runner.state)
st.caption(HONEST)
