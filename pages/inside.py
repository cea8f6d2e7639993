"""Inside the nets: Fig. 7 responses, residual-branch sizes, gradient norms,
block deletion and loss landscapes, plain beside residual."""

import streamlit as st

from resexplorer.errors import ResExplorerError
from resexplorer.services import analysis
from resexplorer.services.catalog import catalog
from resexplorer.services.figures import (
    Series,
    chart_config,
    heatmap_panels,
    lines_chart,
)
from ui.run_picker import pick_runs
from ui.sidebar import page_frame

frame = page_frame("Inside the nets")
runs_dir, data_source = frame.runs_dir, frame.data_source

st.title("Inside the nets")
st.markdown(
    "Why do shortcuts help? The paper's answer (section 3.1): where the identity is already close "
    "to what a block should do, a residual block only has to learn a small correction, *F(x) ≈ 0*, "
    "while a plain block must learn the identity itself. Pick trained runs and a moment of their "
    "training, and look: toggle the shortcuts to swap the plain net for the residual one in every chart."
)

# --- which runs, which moment -----------------------------------------------------------
runs_on_offer = catalog(runs_dir)
everything = runs_on_offer.runs
chosen_ids = pick_runs(runs_on_offer, "Runs to look inside (any runs)", key="inside_runs", depth=56, shortcuts="both")
moment = st.select_slider("Checkpoint moment", analysis.MOMENTS, value="end", key="inside_moment", help="Each run keeps its weights at initialisation, after the first epoch, at the middle and at the end of training.")


picked = []  # (run, model name, label, epoch)
for run_id in chosen_ids:
    run = everything[run_id]
    found = analysis.moment_checkpoint(run, moment)
    name = run.config()["model_name"]
    if found is None:
        st.warning(f"{name} ({run_id}) has no checkpoint yet.")
        continue
    picked.append((run, name, f"{name} @ {found[0]}", found[1]))
if not picked:
    st.stop()


@st.cache_resource(show_spinner="Loading the images to probe with…", max_entries=2)
def _pool(source: str):
    return analysis.image_pool(source)


said: set[str] = set()  # notes already shown in this run of the script


def _result(run, epoch: int, kind: str, compute_now: bool, **settings) -> dict | None:
    """Cached if it is; else computed when asked, with a progress bar."""
    found = analysis.cached(run, epoch, kind, **settings)
    if found is not None or not compute_now:
        return found
    try:
        pool = analysis.pool_for(run, _pool(data_source))
    except ResExplorerError as err:
        st.error(f"{run.config()['model_name']}: {err}")
        return None
    if pool.note and pool.note not in said:
        st.info(pool.note)
        said.add(pool.note)
    bar = st.progress(0.0, text=f"{kind.replace('_', ' ')} of {run.config()['model_name']}…")
    try:
        return analysis.compute(
            run,
            epoch,
            kind,
            pool,
            progress=lambda f, text: bar.progress(f, text=f"{run.config()['model_name']}: {text}"),
            store_beside=run.run_id not in runs_on_offer.shipped,  # the shipped runs stay as shipped; the user cache takes these
            **settings,
        )
    except ResExplorerError as err:
        st.error(f"{run.config()['model_name']}: {err}")
        return None
    finally:
        bar.empty()


def _explain(look_for: str, paper: str) -> None:
    st.markdown(f"**What to look for.** {look_for}  \n**What the paper found.** {paper}")


def _images_caption(results: list[dict]) -> None:
    seen = sorted({f"{r['n_images']:,} {r['settings']['split']} images of {r['images']}" for r in results})
    if seen:
        st.caption("Computed on " + "; ".join(seen) + ".")


# --- Fig. 7 and residual ratios: cheap, computed on first view -------------------------------
inside = [(name, label, _result(run, epoch, "inside", True)) for run, name, label, epoch in picked]
inside = [(name, label, r) for name, label, r in inside if r]

st.header("Layer responses (Fig. 7)")
chart, text = st.columns([3, 1])
with chart:
    order, ranked = st.columns(2)
    order.plotly_chart(
        lines_chart([Series(label, name, list(range(1, len(r["response_std"]) + 1)), r["response_std"], hover=r["layer_names"]) for name, label, r in inside], "layer index (original order)", "std of response"),
        width="stretch",
        key="fig7_order", config=chart_config("fig7_order"),
    )
    ranked.plotly_chart(
        lines_chart([Series(label, name, list(range(1, len(r["response_std"]) + 1)), sorted(r["response_std"], reverse=True)) for name, label, r in inside], "layer index (sorted by magnitude)", "std of response"),
        width="stretch",
        key="fig7_sorted", config=chart_config("fig7_sorted"),
    )
with text:
    _explain(
        "the standard deviation of each 3×3 layer's output after BN, before the ReLU or the addition. "
        "Residual nets should sit lower than plain nets, and deeper residual nets lower still.",
        "ResNets have generally smaller responses than their plain counterparts, and the deeper ResNet-110 "
        "smaller than ResNet-20/56: with more layers, each layer modifies the signal less (section 4.2, Fig. 7).",
    )
_images_caption([r for _, _, r in inside])

st.header("Residual branches: ‖F(x)‖ / ‖x‖")
chart, text = st.columns([3, 1])
with chart:
    st.plotly_chart(
        lines_chart([Series(label, name, list(range(1, len(r["residual_ratio"]) + 1)), r["residual_ratio"], hover=r["block_names"]) for name, label, r in inside], "block (input to output)", "‖F(x)‖ / ‖x‖"),
        width="stretch",
        key="ratios", config=chart_config("ratios"),
    )
with text:
    _explain(
        "how big each block's residual branch is against the signal it adds to. Values well below 1 mean the "
        "block leaves its input mostly as it is: F(x) close to 0. A zero-initialised ResNet starts at exactly 0.",
        "the small responses of Fig. 7 support the idea that residual functions are generally closer to zero "
        "than non-residual ones, and that the identity is a good preconditioning (sections 3.1, 4.2).",
    )
if any(name.startswith("plain") for name, _, _ in inside):
    st.caption(
        "Plain nets have no residual branch. For them this chart shows the closest honest analogue, ‖block(x) − x‖ / ‖x‖: "
        "how far a block moves its input. It is undefined (a gap) where a block changes the shape of its input."
    )

# --- evolution over training, from the metrics every run records ---------------------------------
st.header("How the branches changed during training")
evolution, per_block = [], []
for run, name, label, _ in picked:
    records = [e for e in run.metrics("epoch") if e.get("probes", {}).get("residual_ratio_by_stage")]
    for stage, dash in zip(range(3), ("solid", "dash", "dot")):
        evolution.append(Series(f"{name} stage {stage + 1}", name, [e["epoch"] for e in records], [e["probes"]["residual_ratio_by_stage"][stage] for e in records], dash=dash))
    per_block.append((name, records))
chart, text = st.columns([3, 1])
with chart:
    if any(s.x for s in evolution):
        st.plotly_chart(lines_chart(evolution, "epoch", "mean ‖F(x)‖ / ‖x‖ per stage"), width="stretch", key="ratio_evolution", config=chart_config("ratio_evolution"))
        last = max((records[-1]["epoch"] for _, records in per_block if records), default=1)
        epoch = st.slider("Scrub: per-block ratios at epoch", 1, max(1, int(last)), int(last), key="scrub_epoch") if last > 1 else 1
        scrubbed = []
        for name, records in per_block:
            at = [e for e in records if e["epoch"] == epoch]
            if at:
                ratios = at[0]["probes"]["residual_ratio"]
                scrubbed.append(Series(f"{name}, epoch {epoch}", name, list(range(1, len(ratios) + 1)), ratios))
        st.plotly_chart(lines_chart(scrubbed, "block", "‖F(x)‖ / ‖x‖"), width="stretch", key="ratio_scrub", config=chart_config("ratio_scrub"))
    else:
        st.info("These runs recorded no per-epoch probes.")
with text:
    _explain(
        "each stage's mean branch size at every epoch end, measured during training on 500 fixed test images. "
        "Scrub through the epochs to see which blocks grow and which stay near zero.",
        "the paper reports the end state only (Fig. 7); watching it form shows how early residual branches settle.",
    )

# --- gradients: one batch, computed on first view -----------------------------------------------
st.header("Gradient norms")
grads = [(name, label, _result(run, epoch, "gradients", True)) for run, name, label, epoch in picked]
grads = [(name, label, r) for name, label, r in grads if r]
chart, text = st.columns([3, 1])
with chart:
    weights, inputs = st.columns(2)
    weights.plotly_chart(
        lines_chart([Series(label, name, list(range(1, len(r["weight_grad_norm"]) + 1)), r["weight_grad_norm"], hover=r["layer_names"]) for name, label, r in grads], "layer", "‖∂L/∂W‖", log_y=True),
        width="stretch",
        key="grad_weights", config=chart_config("grad_weights"),
    )
    inputs.plotly_chart(
        lines_chart([Series(label, name, list(range(1, len(r["input_grad_norm"]) + 1)), r["input_grad_norm"], hover=r["block_names"]) for name, label, r in grads], "block", "‖∂L/∂x‖ at block input", log_y=True),
        width="stretch",
        key="grad_inputs", config=chart_config("grad_inputs"),
    )
with text:
    _explain(
        "the gradient of one training batch's loss, for every layer's weights (left) and arriving at every "
        "block's input (right), on a log scale. With BN, a plain net's gradients do not vanish towards the input.",
        "the plain nets' trouble is unlikely to be vanishing gradients: they use BN, and the backward gradients "
        "have healthy norms; deep plain nets may have exponentially low convergence rates instead (section 4.1).",
    )
_images_caption([r for _, _, r in grads])

# --- lesions: on request, cached ----------------------------------------------------------------
st.header("Deleting blocks (Veit et al. 2016)")
single = [(name, label, run, epoch, analysis.cached(run, epoch, "lesion_single")) for run, name, label, epoch in picked]
randomly = [(name, label, run, epoch, analysis.cached(run, epoch, "lesion_random")) for run, name, label, epoch in picked]
missing = sum(r is None for *_, r in single + randomly)
if missing and st.button(f"Compute the lesion sweeps ({missing} missing; about 10–40 s per 56-layer net on a CPU)", key="lesion_go"):
    single = [(n, lb, run, ep, r or _result(run, ep, "lesion_single", True)) for n, lb, run, ep, r in single]
    randomly = [(n, lb, run, ep, r or _result(run, ep, "lesion_random", True)) for n, lb, run, ep, r in randomly]
single = [(n, lb, r) for n, lb, _, _, r in single if r]
randomly = [(n, lb, r) for n, lb, _, _, r in randomly if r]
chart, text = st.columns([3, 1])
with chart:
    if single or randomly:
        left, right = st.columns(2)
        left.plotly_chart(
            lines_chart(
                [Series(label, name, list(range(1, len(r["error_without"]) + 1)), [100 * e for e in r["error_without"]], hover=r["block_names"]) for name, label, r in single]
                + [Series(f"{label}: nothing deleted", name, [1, len(r["error_without"])], [100 * r["baseline_error"]] * 2, dash="dot") for name, label, r in single],
                "deleted block",
                "test error (%)",
            ),
            width="stretch",
            key="lesion_single", config=chart_config("lesion_single"),
        )
        right.plotly_chart(
            lines_chart([Series(label, name, r["ks"], [100 * e for e in r["mean_error"]]) for name, label, r in randomly], "blocks deleted at random", f"test error (%), mean of {randomly[0][2]['draws'] if randomly else 3} draws"),
            width="stretch",
            key="lesion_random", config=chart_config("lesion_random"),
        )
        _images_caption([r for _, _, r in single + randomly])
    else:
        st.info("Not computed yet for these checkpoints: press the button above.")
with text:
    _explain(
        "test error after deleting one block (left), or k random blocks (right). A deleted residual block keeps "
        "its shortcut. A plain net has none, so its block becomes the identity, or option A's subsample-and-pad "
        "where the block changes shape.",
        "Veit et al. found that deleting single blocks barely hurts a ResNet, except where it downsamples, and "
        "that error rises smoothly with the number deleted, as for an ensemble; a plain net collapses.",
    )

# --- loss landscape: on request, cached ------------------------------------------------------------
st.header("Loss landscape (Li et al. 2018)")
slices = [(name, label, run, epoch, analysis.cached(run, epoch, "landscape_1d"), analysis.cached(run, epoch, "interpolation")) for run, name, label, epoch in picked]
missing = sum((a is None) + (b is None) for *_, a, b in slices)
if missing and st.button(f"Compute the 1-D slices and the paths from initialisation ({missing} missing; about 30 s each on a CPU)", key="landscape_go"):
    slices = [(n, lb, run, ep, a or _result(run, ep, "landscape_1d", True), b or (_result(run, ep, "interpolation", True) if ep > 0 else None)) for n, lb, run, ep, a, b in slices]
chart, text = st.columns([3, 1])
with chart:
    left, right = st.columns(2)
    ones = [(n, lb, a) for n, lb, _, _, a, _ in slices if a]
    paths = [(n, lb, b) for n, lb, _, _, _, b in slices if b]
    if ones:
        log_scale = st.toggle("Log scale", value=True, key="landscape_log")
        left.plotly_chart(lines_chart([Series(label, name, r["axes"][0], r["loss"]) for name, label, r in ones], "step along a filter-normalised random direction", "training loss", log_y=log_scale), width="stretch", key="landscape_1d", config=chart_config("landscape_1d"))
    if paths:
        right.plotly_chart(lines_chart([Series(label, name, r["axes"][0], r["loss"]) for name, label, r in paths], "α: initial (0) to these weights (1)", "training loss", log_y=True), width="stretch", key="interpolation", config=chart_config("interpolation"))
    if not ones and not paths:
        st.info("Not computed yet for these checkpoints: press the button above.")
    _images_caption([r for _, _, r in ones + paths])
with text:
    _explain(
        "the training loss along a random direction through the weights (left; BN and biases fixed, every filter "
        "scaled to its own norm) and along the straight path from initialisation (right; BN on batch statistics). "
        "Wide, smooth basins train easily; sharp, bumpy ones do not.",
        "Li et al. found that skip connections keep deep nets' landscapes smooth and nearly convex, while "
        "deep plain nets' landscapes turn chaotic (their Fig. 5); the paper itself reports optimisation difficulty (section 4.1).",
    )

with st.expander("2-D slice (slower: 121 points per net)"):
    planes = [(name, run, epoch, analysis.cached(run, epoch, "landscape_2d")) for run, name, _, epoch in picked]
    if any(p is None for *_, p in planes) and st.button("Compute the 2-D slices", key="landscape_2d_go"):
        planes = [(name, run, epoch, p or _result(run, epoch, "landscape_2d", True)) for name, run, epoch, p in planes]
    drawn = [(f"{name} (epoch {epoch})", p["axes"][0], p["loss"]) for name, _, epoch, p in planes if p]
    if drawn:
        st.plotly_chart(heatmap_panels(drawn, "log10 loss"), width="content", key="landscape_2d", config=chart_config("landscape_2d"))
        st.caption("Both axes are filter-normalised random directions, one colour scale for all nets.")
