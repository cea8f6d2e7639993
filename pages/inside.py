"""Inside the nets: Fig. 7 responses, residual-branch sizes, gradient norms,
block deletion and loss landscapes, plain beside residual."""

import streamlit as st

from resexplorer.services import analysis, inside_series
from resexplorer.services.catalog import Catalog, catalog
from resexplorer.services.figures import chart_config, heatmap_panels, lines_chart
from resexplorer.services.inside_series import Checkpoint, Result
from resexplorer.training.launch import PROBE_IMAGES
from ui.choices import Linked, read_link, session_defaults, write_link
from ui.page_state import Analyses, Work, pick_runs
from ui.sidebar import page_frame

INTRO = (
    "Why do shortcuts help? The paper's answer (section 3.1): where the identity is already close "
    "to what a block should do, a residual block only has to learn a small correction, *F(x) ≈ 0*, "
    "while a plain block must learn the identity itself. Pick trained runs and a moment of their "
    "training, and look: toggle the shortcuts to swap the plain net for the residual one in every chart."
)
DEFAULTS = {"inside_moment": "end", "landscape_log": True}
LINKS = [Linked("inside_moment", "moment", analysis.MOMENTS)]  # the runs travel with the run picker's own
NOT_COMPUTED = "Not computed yet for these checkpoints: press the button above."
SLICE_2D_POINTS = analysis.KINDS["landscape_2d"].defaults["points"] ** 2  # a grid of points x points


def _explained_beside(look_for: str, paper: str):
    """A wide column for the charts, and beside it what to look for and what the paper found."""
    charts, text = st.columns([3, 1])
    text.markdown(f"**What to look for.** {look_for}  \n**What the paper found.** {paper}")
    return charts


def _draw(place, fig, key: str) -> None:
    place.plotly_chart(fig, width="stretch", key=key, config=chart_config(key))


def _images_caption(results) -> None:
    seen = inside_series.images_seen(results)
    if seen:
        st.caption(f"Computed on {seen}.")


def _work(checkpoints: list[Checkpoint], kind: str) -> list[Work]:
    return [Work(c.run, c.epoch, kind) for c in checkpoints]


def _present(checkpoints: list[Checkpoint], results: list[dict | None]) -> list[Result]:
    """(checkpoint, result) of those with a result (cached, or computed and not failed)."""
    return [(c, r) for c, r in zip(checkpoints, results) if r]


def _pair_on_request(analyses: Analyses, first: tuple, second: tuple, label: str, key: str) -> tuple[list, list]:
    """Two analyses, each of its checkpoints, behind one button: the
    results of each that are there."""
    (kind, these), (other, those) = first, second
    found = analyses.on_request(_work(these, kind) + _work(those, other), label, key)
    return _present(these, found[: len(these)]), _present(those, found[len(these) :])


def probes(checkpoints: list[Checkpoint], analyses: Analyses) -> tuple[list[Result], list[Result]]:
    """The layer responses and the gradient norms of every checkpoint: what
    the page computes by itself, as one action (one Cancel stops it)."""
    found = analyses.results(_work(checkpoints, "inside") + _work(checkpoints, "gradients"), unasked=True)
    return _present(checkpoints, found[: len(checkpoints)]), _present(checkpoints, found[len(checkpoints) :])


def checkpoints_to_show(runs_dir: str) -> tuple[list[Checkpoint], Catalog]:
    """The runs picked and the moment of their training; stops the page when none has a checkpoint."""
    offer = catalog(runs_dir)
    chosen = pick_runs(offer, "Runs to look inside (any runs)", key="inside_runs", depth=56, shortcuts="both")
    moment = st.select_slider(
        "Checkpoint moment",
        analysis.MOMENTS,
        key="inside_moment",
        persist_state="page",
        help="Each run keeps its weights at initialisation, after the first epoch, at the middle and at the end "
        "of training.",
    )
    write_link(LINKS)
    found, without = inside_series.checkpoints_at([offer.runs[i] for i in chosen], moment)
    for run in without:
        st.warning(f"{run} has no checkpoint yet.")
    if not found:
        st.stop()
    return found, offer


def responses_section(inside: list[Result]) -> None:
    """Fig. 7: computed on first view (cheap)."""
    st.header("Layer responses (Fig. 7)")
    charts = _explained_beside(
        "the standard deviation of each 3×3 layer's output after BN, before the ReLU or the addition, pooled over "
        "every element (all images, channels and positions). The paper does not say whether it pools or "
        "averages per channel; per channel reads lower (resnet-20's stem: 0.85 pooled, 0.61 per channel), so "
        "compare shapes with its figure, not values. Residual nets should sit lower than plain nets, and deeper "
        "residual nets lower still.",
        "ResNets have generally smaller responses than their plain counterparts, and the deeper ResNet-110 "
        "smaller than ResNet-20/56: with more layers, each layer modifies the signal less (section 4.2, Fig. 7).",
    )
    with charts:
        in_order, ranked = st.columns(2)
        _draw(
            in_order,
            lines_chart(inside_series.response_lines(inside), "layer index (original order)", "std of response"),
            "fig7_order",
        )
        _draw(
            ranked,
            lines_chart(
                inside_series.response_lines(inside, ranked=True),
                "layer index (sorted by magnitude)",
                "std of response",
            ),
            "fig7_sorted",
        )
    _images_caption([r for _, r in inside])


def branch_ratio_section(inside: list[Result]) -> None:
    st.header("Residual branches: ‖F(x)‖ / ‖shortcut(x)‖")
    charts = _explained_beside(
        "how big each block's residual branch is against the signal it is added to, the shortcut's output: x "
        "itself, except at the first block of stages 2 and 3 (and everywhere with option C), where the shortcut "
        "subsamples and pads, or projects. Values well below 1 mean the block leaves its input mostly as it is: "
        "F(x) close to 0. A zero-initialised ResNet starts at exactly 0.",
        "the small responses of Fig. 7 support the idea that residual functions are generally closer to zero "
        "than non-residual ones, and that the identity is a good preconditioning (sections 3.1, 4.2).",
    )
    _draw(
        charts,
        lines_chart(inside_series.ratio_lines(inside), "block (input to output)", "‖F(x)‖ / ‖shortcut(x)‖"),
        "ratios",
    )
    if inside_series.any_plain([c for c, _ in inside]):
        st.caption(
            "Plain nets have no residual branch. For them this chart shows the closest honest analogue, "
            "‖block(x) − A(x)‖ / ‖A(x)‖: how far a block moves its input, A being option A's parameter-free "
            "shortcut (x itself, subsampled and zero-padded where the block changes the shape)."
        )


def evolution_section(checkpoints: list[Checkpoint]) -> None:
    """From the probes every run records at each epoch end: nothing to compute."""
    st.header("How the branches changed during training")
    histories = [inside_series.probe_history(c) for c in checkpoints]
    stages = inside_series.stage_lines(histories)
    charts = _explained_beside(
        f"each stage's mean branch size at every epoch end, measured during training on {PROBE_IMAGES} fixed test "
        "images. "
        "Scrub through the epochs to see which blocks grow and which stay near zero.",
        "the paper reports the end state only (Fig. 7); watching it form shows how early residual branches settle.",
    )
    with charts:
        if not any(s.x for s in stages):
            st.info("These runs recorded no per-epoch probes.")
            return
        _draw(st, lines_chart(stages, "epoch", "mean ‖F(x)‖ / ‖shortcut(x)‖ per stage"), "ratio_evolution")
        legacy = [h.model for h in histories if h.legacy]
        if legacy:
            st.caption(
                f"{', '.join(legacy)} recorded ‖F(x)‖ / ‖x‖ during training, before this measure; that equals "
                "‖F(x)‖ / ‖shortcut(x)‖ only where the shortcut is the identity, so only those blocks are shown "
                "(gaps elsewhere; none at all with option C) and the stage means are theirs."
            )
        last = int(inside_series.last_recorded_epoch(histories))
        scrubbed = st.slider("Scrub: per-block ratios at epoch", 1, last, last, key="scrub_epoch") if last > 1 else 1
        _draw(
            st,
            lines_chart(inside_series.block_lines_at(histories, scrubbed), "block", "‖F(x)‖ / ‖shortcut(x)‖"),
            "ratio_scrub",
        )


def gradients_section(grads: list[Result]) -> None:
    """One batch: computed on first view."""
    st.header("Gradient norms")
    charts = _explained_beside(
        "the gradient of one training batch's loss, for every layer's weights (left) and arriving at every "
        "block's input (right, per value: the root mean square), on a log scale. With BN, a plain net's gradients "
        "do not vanish towards the input; in a deep plain net they grow towards it instead (the first block's "
        "against the last's, below).",
        "the plain nets' trouble is unlikely to be vanishing gradients: they use BN, and the backward gradients "
        "have healthy norms; deep plain nets may have exponentially low convergence rates instead (section 4.1).",
    )
    with charts:
        weights, inputs = st.columns(2)
        _draw(weights, lines_chart(inside_series.gradient_lines(grads), "layer", "‖∂L/∂W‖", log_y=True), "grad_weights")
        _draw(
            inputs,
            lines_chart(
                inside_series.gradient_lines(grads, at_inputs=True),
                "block",
                "∂L/∂x at block input, RMS per value",
                log_y=True,
            ),
            "grad_inputs",
        )
    if grads:
        st.markdown(
            "**What these data show.** The gradient at the first block's input, per value (root mean square), as "
            f"a multiple of the last block's: {inside_series.gradient_growth(grads)}. Above 1 the gradient grows "
            "towards the input, below 1 it shrinks; far from 1 either way, it explodes or fades: set that beside the "
            "paper's 'healthy norms'. Per value, because the first block's input holds 4× the values of the last's "
            "(16×32×32 against 64×8×8): equal gradients per value would read 2× in raw norms, which the right-hand "
            "chart's hover keeps."
        )
    _images_caption([r for _, r in grads])


def lesions_section(checkpoints: list[Checkpoint], analyses: Analyses) -> None:
    """Slower sweeps: computed on request, then cached."""
    st.header("Deleting blocks (Veit et al. 2016)")
    label = "Compute the lesion sweeps ({missing} missing; about 10–40 s per 56-layer net on a CPU)"
    single, randomly = _pair_on_request(
        analyses, ("lesion_single", checkpoints), ("lesion_random", checkpoints), label, "lesion_go"
    )
    charts = _explained_beside(
        "test error after deleting one block (left), or k random blocks (right). A deleted residual block keeps "
        "its shortcut. A plain net has none, so its block becomes the identity, or option A's subsample-and-pad "
        "where the block changes shape.",
        "Veit et al. found, on deep nets (ResNet-110 on CIFAR-10), that deleting single blocks barely hurts a "
        "ResNet, except where it downsamples, and that error rises smoothly with the number deleted, as for an "
        "ensemble; a plain net collapses. Below the charts: how far the nets here bear that out.",
    )
    with charts:
        if not single and not randomly:
            st.info(NOT_COMPUTED)
            return
        one, several = st.columns(2)
        _draw(
            one,
            lines_chart(inside_series.lesion_single_lines(single), "deleted block", "test error (%)"),
            "lesion_single",
        )
        draws = inside_series.lesion_draws(randomly)
        _draw(
            several,
            lines_chart(
                inside_series.lesion_random_lines(randomly),
                "blocks deleted at random",
                f"test error (%), mean of {draws} draws",
            ),
            "lesion_random",
        )
    if single:
        st.markdown(f"**What these data show.** {inside_series.lesion_reading(single)}")
    _images_caption([r for _, r in single + randomly])


def landscape_section(checkpoints: list[Checkpoint], analyses: Analyses) -> None:
    """1-D slices and paths from initialisation: computed on request, then cached."""
    st.header("Loss landscape (Li et al. 2018)")
    trained = [c for c in checkpoints if c.epoch > 0]  # no path from initialisation to initialisation
    label = "Compute the 1-D slices and the paths from initialisation ({missing} missing; about 30 s each on a CPU)"
    ones, paths = _pair_on_request(
        analyses, ("landscape_1d", checkpoints), ("interpolation", trained), label, "landscape_go"
    )
    charts = _explained_beside(
        "the training loss along a random direction through the weights (left; BN and biases fixed, every filter "
        "scaled to its own norm) and along the straight path from initialisation (right; BN on batch statistics). "
        "Wide, smooth basins train easily; sharp, bumpy ones do not.",
        "Li et al. found that skip connections keep deep nets' landscapes smooth and nearly convex, while "
        "deep plain nets' landscapes turn chaotic (their Fig. 5); the paper itself reports optimisation "
        "difficulty (section 4.1).",
    )
    with charts:
        along, from_start = st.columns(2)
        if ones:
            log_scale = st.toggle("Log scale", key="landscape_log", persist_state="page")
            slices = lines_chart(
                inside_series.slice_lines(ones),
                "step along a filter-normalised random direction",
                "training loss",
                log_y=log_scale,
            )
            _draw(along, slices, "landscape_1d")
        if paths:
            _draw(
                from_start,
                lines_chart(
                    inside_series.slice_lines(paths), "α: initial (0) to these weights (1)", "training loss", log_y=True
                ),
                "interpolation",
            )
        if not ones and not paths:
            st.info(NOT_COMPUTED)
        _images_caption([r for _, r in ones + paths])


def plane_section(checkpoints: list[Checkpoint], analyses: Analyses) -> None:
    """2-D slices: slower still, computed on request, then cached."""
    with st.expander(f"2-D slice (slower: {SLICE_2D_POINTS} points per net)"):
        found = analyses.on_request(_work(checkpoints, "landscape_2d"), "Compute the 2-D slices", "landscape_2d_go")
        drawn = _present(checkpoints, found)
        if drawn:
            st.plotly_chart(
                heatmap_panels(inside_series.plane_panels(drawn), "log10 loss"),
                width="content",
                key="landscape_2d",
                config=chart_config("landscape_2d"),
            )
            st.caption("Both axes are filter-normalised random directions, one colour scale for all nets.")


frame = page_frame("Inside the nets")
session_defaults(DEFAULTS)
read_link("inside", LINKS)
st.title("Inside the nets")
st.markdown(INTRO)
shown, offer = checkpoints_to_show(frame.runs_dir)
page_analyses = Analyses(frame.data_source, offer.shipped)
inside_results, gradient_results = probes(shown, page_analyses)
responses_section(inside_results)
branch_ratio_section(inside_results)
evolution_section(shown)
gradients_section(gradient_results)
lesions_section(shown, page_analyses)
landscape_section(shown, page_analyses)
plane_section(shown, page_analyses)
