"""Attributions: what plain and residual nets look at, side by side, and how
far each explanation can be trusted."""

import numpy as np
import streamlit as st

from resexplorer.data.images import ACCEPTED, decode_upload
from resexplorer.data.samples import cifar_sample_paths, photo_paths
from resexplorer.errors import ResExplorerError
from resexplorer.science.attribution import (
    BASELINES,
    DEFAULT_METHODS,
    METHODS,
    explain,
    overlay,
    sanity_check,
)
from resexplorer.services import analysis
from resexplorer.services.figures import Series, chart_config, lines_chart
from ui.run_picker import pick_trained_models
from ui.sidebar import page_frame

frame = page_frame("Attributions")
runs_dir, data_source = frame.runs_dir, frame.data_source
GALLERY_SIZE = 200
METHOD_DASHES = dict(zip(METHODS, ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")))

st.title("Attributions")
st.markdown(
    "Which pixels make a net say *cat*? Captum's attribution methods answer for each model, plain "
    "beside residual, on the same image. The deletion curves and the randomisation check below then "
    "test each answer: an explanation is only as good as its faithfulness to the model."
)

# --- runs --------------------------------------------------------------------------------
picked = pick_trained_models(runs_dir, "Models to explain (latest checkpoint of each run)", key="attr_runs", depth=56, shortcuts="both")
runs, models, classes = picked.runs, picked.models, picked.classes


@st.cache_resource(show_spinner="Loading test images…", max_entries=2)
def _pool(source: str):
    return analysis.image_pool(source)


@st.cache_data(show_spinner=False, max_entries=16)
def _gallery_predictions(run_id: str, epoch: int, _model, pool_name: str, _images) -> np.ndarray:
    """Each gallery image's predicted class, once per run, checkpoint and pool."""
    return _model.probabilities(_images).argmax(1)


@st.cache_data(show_spinner="Computing attributions…", max_entries=64)
def _explain(run_id: str, epoch: int, _model, image: np.ndarray, methods: tuple, rule, true_label, baseline: str):
    """One model's maps of one image; reruns that change nothing reuse them."""
    return explain(_model, image, methods, rule, true_label, baseline)


# --- the image -----------------------------------------------------------------------------
source = st.radio("Image", ["Test images", "Sample images", "Upload"], horizontal=True, key="attr_source")
image, true_label, original = None, None, None  # uint8 [3, 32, 32], class index, preview array
if source == "Test images":
    try:
        pool = analysis.pool_for(runs[0], _pool(data_source))
    except ResExplorerError as err:
        st.error(str(err))
        st.stop()
    if pool.note:
        st.caption(pool.note)
    gallery, gallery_labels = pool.take("test", GALLERY_SIZE)
    gallery = gallery.numpy()
    predictions = np.stack([_gallery_predictions(run.run_id, m.epoch, m, pool.name, gallery) for run, m in zip(runs, models)])  # [models, N]
    left, right = st.columns([1, 1])
    wanted = left.selectbox("Class", ["all", *classes], key="attr_class")
    only_one_wrong = right.checkbox("Misclassified by one model only", key="attr_one_wrong", disabled=len(models) < 2)
    keep = np.ones(len(gallery_labels), dtype=bool)
    if wanted != "all":
        keep &= gallery_labels.numpy() == classes.index(wanted)
    if only_one_wrong:
        keep &= (predictions != gallery_labels.numpy()[None]).sum(0) == 1
    shown = np.flatnonzero(keep)[:40]
    if not len(shown):
        st.info("No test image matches; loosen the filter.")
        st.stop()

    def _caption(i: int) -> str:
        said = " · ".join(f"{m.name}: {classes[predictions[k, i]]}" for k, m in enumerate(models))
        return f"#{i} {classes[gallery_labels[i]]} | {said}"

    st.image([gallery[i].transpose(1, 2, 0) for i in shown], width=64, caption=[f"#{i}" for i in shown])
    index = st.selectbox("Explain test image", list(shown), format_func=_caption, key="attr_index")
    image, true_label = gallery[index], int(gallery_labels[index])
elif source == "Sample images":
    paths = {p.name: p for p in [*cifar_sample_paths(), *photo_paths()]}
    name = st.selectbox("Sample", list(paths), key="attr_sample", help="CIFAR-10 test images named by class, and real photographs (assets/samples).")
    decoded = decode_upload(name, paths[name].read_bytes())
    image, original = decoded.model_input(), decoded.rgb
    stem = name.rsplit("_", 1)[0]
    true_label = classes.index(stem) if stem in classes and paths[name].parent.name == "cifar10" else None
else:
    upload = st.file_uploader("An image file", type=list(ACCEPTED), key="attr_upload")
    if upload is None:
        st.info("Upload a photo: it is centre-cropped and resized to the 32x32 pixels the models see.")
        st.stop()
    try:
        decoded = decode_upload(upload.name, upload.getvalue())
    except ResExplorerError as err:
        st.error(str(err))
        st.stop()
    image, original = decoded.model_input(), decoded.rgb
    for note in decoded.notes:
        st.caption(note)

# --- settings ------------------------------------------------------------------------------
methods = st.multiselect("Methods", list(METHODS), default=list(DEFAULT_METHODS), format_func=METHODS.get, key="attr_methods")
cols = st.columns(3)
targets = ["predicted"] + (["true"] if true_label is not None else []) + classes
target_rule = cols[0].selectbox("Explain the class", targets, format_func=lambda t: {"predicted": "each model's prediction", "true": f"the true class ({classes[true_label]})" if true_label is not None else ""}.get(t, t), key="attr_target")
baseline = cols[1].selectbox("Baseline (IG, DeepLift)", BASELINES, key="attr_baseline", help="black: an all-black image; blurred: this image blurred; mean: the training set's mean colour")
signed = cols[2].radio("Show", ["signed", "absolute"], horizontal=True, key="attr_signed") == "signed"
if not methods:
    st.info("Pick at least one method.")
    st.stop()
rule = target_rule if target_rule in ("predicted", "true") else classes.index(target_rule)

try:
    explanations = [_explain(run.run_id, m.epoch, m, image, tuple(methods), rule, true_label, baseline) for run, m in zip(runs, models)]
except ResExplorerError as err:
    st.error(str(err))
    st.stop()

# --- what the models see and say --------------------------------------------------------------
seen, said = st.columns([1, 3])
with seen:
    st.image(image.transpose(1, 2, 0).repeat(6, 0).repeat(6, 1), caption="the 32x32 input the models see", width=192)
    if original is not None and original.shape[0] * 192 >= original.shape[1]:  # too thin a strip cannot be drawn at this width
        st.image(original, caption="the original (centre crop and resize make the input)", width=192)
with said:
    rows = []
    for ex in explanations:
        top = np.argsort(-ex.probabilities)[:3]
        rows.append({"model": ex.model, **{f"top {k + 1}": f"{classes[c]} {100 * ex.probabilities[c]:.1f}%" for k, c in enumerate(top)}, "explained class": classes[ex.target]})
    st.dataframe(rows, hide_index=True, width="stretch")
    if true_label is not None:
        st.caption(f"True class: **{classes[true_label]}**.")

# --- the grid ----------------------------------------------------------------------------------
st.subheader("Attribution maps")
per_column = st.radio(
    "Colour scale",
    ["one per column (compare models)", "one per map (see each map's shape)"],
    horizontal=True,
    key="attr_scale",
).startswith("one per column")


def _scale(maps) -> float:
    """The 99th percentile of |value|, so a few extreme pixels do not wash the rest out."""
    return float(np.percentile(np.abs(np.asarray(maps)), 99))


maps = {(k, m): ex.attributions[m].pixel_map(signed)[0] for k, ex in enumerate(explanations) for m in methods}
column_scale = {m: _scale([maps[k, m] for k in range(len(explanations))]) for m in methods}
for k, ex in enumerate(explanations):  # a row of maps per model, drawn on the server: crisp pixels, no chart library
    row = [overlay(image, maps[k, m], column_scale[m] if per_column else _scale(maps[k, m]), signed, upscale=5) for m in methods]
    st.image(row, caption=[f"{ex.model} · {METHODS[m]}" for m in methods], width=160, output_format="PNG")  # JPEG would smear single pixels
st.caption(
    ("Red pixels raise the explained class's score, blue ones lower it" if signed else "Brighter pixels matter more")
    + "; each column shares one colour scale, so models compare directly. Grad-CAM is non-negative by construction. "
    + "Seconds per map: "
    + "; ".join(f"{ex.model}: " + ", ".join(f"{METHODS[m]} {ex.attributions[m].seconds:.2f}" for m in methods) for ex in explanations)
    + "."
)
faint = sorted({ex.model for k, ex in enumerate(explanations) for m in methods if _scale(maps[k, m]) < 0.1 * column_scale[m]})
if per_column and faint:
    st.info(
        f"On a shared scale the maps of {', '.join(faint)} are faint: their attributions are over ten times smaller "
        "than another model's for the same method. Pick *one per map* to see their shape."
    )

# --- faithfulness ---------------------------------------------------------------------------------
st.subheader("Faithfulness: deleting the pixels each map ranks highest")
chart, text = st.columns([3, 1])
with chart:
    st.plotly_chart(
        lines_chart(
            [Series(f"{ex.model} · {METHODS[m]}", ex.model, [100 * f for f in ex.deletion[m].fractions], ex.deletion[m].probability, dash=METHOD_DASHES[m]) for ex in explanations for m in methods],
            "pixels removed (%)",
            "probability of the explained class",
            markers=False,
        ),
        width="stretch",
        key="attr_deletion", config=chart_config("attr_deletion"),
    )
    st.dataframe([{"model": ex.model, **{METHODS[m]: round(ex.deletion[m].area, 3) for m in methods}} for ex in explanations], hide_index=True)
with text:
    st.markdown(
        "**Deletion curves** (Petsiuk et al. 2018): pixels are replaced by the training set's mean colour, most "
        "important first. A faithful map makes the probability fall fast, so the **area** under the curve (table, "
        "0 to 1) is **lower**. Compare methods on one model, or one method across models."
    )

with st.expander("Sanity check: randomise the model, layer by layer from the top (Adebayo et al. 2018)"):
    st.markdown(
        "If a map explains the model, it should change when the model's weights are replaced by random ones. "
        "Here the classifier, then each stage from the last, then the stem are randomised in turn; the chart shows "
        "how similar each map stays to the trained model's (rank correlation of absolute values). A method still "
        f"above {0.5} after everything is random is flagged: it shows the image more than the model."
    )
    check_key = (image.tobytes(), tuple(r.run_id for r in runs), tuple(methods), baseline, str(rule))
    if st.button("Run the check", key="attr_sanity"):
        bar = st.progress(0.0)
        checks = []
        for k, (m, ex) in enumerate(zip(models, explanations)):
            for j, method in enumerate(methods):
                result = sanity_check(m.model, m.inputs(image[None])[0], ex.target, method, baseline, m.black())
                checks.append((m.name, result))
                bar.progress((k * len(methods) + j + 1) / (len(models) * len(methods)), text=f"{m.name}: {METHODS[method]}")
        bar.empty()
        st.session_state["attr_checks"] = (check_key, [(name, r.method, r.steps, r.similarity, r.flagged) for name, r in checks])
    stored_key, checks = st.session_state.get("attr_checks", (None, None))
    if checks and stored_key == check_key:  # results of another image or setting are not shown
        st.plotly_chart(
            lines_chart([Series(f"{name} · {METHODS[method]}", name, steps, similarity, dash=METHOD_DASHES[method]) for name, method, steps, similarity, _ in checks], "randomised so far", "similarity to the trained model's map"),
            width="stretch",
            key="attr_sanity_chart", config=chart_config("attr_sanity_chart"),
        )
        flagged = [f"{METHODS[method]} on {name}" for name, method, _, _, flag in checks if flag]
        if flagged:
            st.warning("Barely changed with random weights, so not trustworthy here: " + ", ".join(flagged) + ".")
        else:
            st.success("Every method's map changed once the weights were random.")
