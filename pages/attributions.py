"""Attributions: what plain and residual nets look at, side by side, and how
far each explanation can be trusted."""

import streamlit as st

from resexplorer.data.images import ACCEPTED, UPLOAD_MB, decode_upload, enlarged
from resexplorer.data.samples import class_in_name, is_cifar_sample, samples_by_name
from resexplorer.errors import ResExplorerError
from resexplorer.science.attribution import (
    BASELINES,
    DEFAULT_METHODS,
    METHODS,
    RANDOM_ORDERS,
    SanityCheck,
    explain,
)
from resexplorer.services import explanations
from resexplorer.services.figures import chart_config, lines_chart
from ui.choices import Linked, read_link, session_defaults, write_link
from ui.long_action import long_action
from ui.page_state import Picked, pick_trained_models, pool_for
from ui.sidebar import page_frame
from ui.text import literal

INTRO = (
    "Which pixels make a net say *cat*? Captum's attribution methods answer for each model, plain "
    "beside residual, on the same image. The deletion curves and the randomisation check below then "
    "test each answer: an explanation is only as good as its faithfulness to the model."
)
GALLERY_SIZE = 200  # test images the gallery draws from
IMAGE_SOURCES = ["Test images", "Sample images", "Upload"]
DEFAULTS = {"attr_methods": list(DEFAULT_METHODS)}
SCALES = ["one per column (compare models)", "one per map (see each map's shape)"]


@st.cache_data(show_spinner=False, max_entries=16)
def _gallery_predictions(run_id: str, epoch: int, _model, pool_name: str, _images):
    """Each gallery image's predicted class, once per run, checkpoint and pool."""
    return explanations.predicted_classes(_model, _images)


@st.cache_data(show_spinner="Computing attributions…", max_entries=64)
def _explain(run_id: str, epoch: int, _model, image, methods: tuple, which_class, true_label, baseline: str):
    """One model's maps of one image; reruns that change nothing reuse them."""
    return explain(_model, image, methods, which_class, true_label, baseline)


def _test_image(picked: Picked, data_source: str):
    """A test image picked from a gallery filtered by class and by
    disagreement between the models; (image, its class)."""
    try:
        pool = pool_for(picked.runs[0], data_source)
    except ResExplorerError as err:
        st.error(str(err))
        st.stop()
    if pool.note:
        st.caption(pool.note)
    images, labels = explanations.gallery_images(pool, GALLERY_SIZE)
    predictions = [
        _gallery_predictions(run.run_id, m.epoch, m, pool.name, images) for run, m in zip(picked.runs, picked.models)
    ]
    gallery = explanations.Gallery(images, labels, predictions)
    classes, names = picked.classes, [m.name for m in picked.models]
    class_link = Linked("attr_class", "class", ["all", *classes])
    read_link("attributions:class", [class_link])  # the test image's own links, read once each like the page's
    class_col, wrong_col = st.columns([1, 1])
    wanted = class_col.selectbox("Class", class_link.options, key="attr_class")
    one_wrong = wrong_col.checkbox("Misclassified by one model only", key="attr_one_wrong", disabled=len(names) < 2)
    shown = gallery.matching(None if wanted == "all" else classes.index(wanted), one_wrong)
    if not shown:
        st.info("No test image matches; loosen the filter.")
        st.stop()
    st.image(gallery.thumbnails(shown), width=64, caption=[f"#{i}" for i in shown])
    index_link = Linked("attr_index", "test_image", shown)
    read_link("attributions:test image", [index_link])
    index = st.selectbox(
        "Explain test image", shown, format_func=lambda i: gallery.caption(i, classes, names), key="attr_index"
    )
    write_link([class_link, index_link])
    return gallery.picked(index)


def _sample_image(classes: list[str]):
    """A shipped sample; (image, its class where the name says it, the decoded file)."""
    paths = samples_by_name()
    name = st.selectbox(
        "Sample",
        list(paths),
        key="attr_sample",
        help="CIFAR-10 test images named by class, and real photographs (assets/samples).",
    )
    decoded = decode_upload(name, paths[name].read_bytes())
    said = class_in_name(name, classes) if is_cifar_sample(paths[name]) else None
    return decoded.model_input(), None if said is None else classes.index(said), decoded


def _uploaded_image():
    """The user's file; (image, no class, the decoded file). Stops the page until there is one."""
    upload = st.file_uploader("An image file", type=list(ACCEPTED), key="attr_upload", max_upload_size=UPLOAD_MB)
    if upload is None:
        st.info("Upload a photo: it is centre-cropped and resized to the 32x32 pixels the models see.")
        st.stop()
    try:
        decoded = decode_upload(upload.name, upload.getvalue())
    except ResExplorerError as err:
        st.error(literal(str(err)))
        st.stop()
    for note in decoded.notes:
        st.caption(literal(note))
    return decoded.model_input(), None, decoded


def chosen_image(picked: Picked, data_source: str):
    """(uint8 [3, 32, 32] image, its class or None, the decoded file or None for a test image)."""
    source = st.radio("Image", IMAGE_SOURCES, horizontal=True, key="attr_source")
    if source == "Test images":
        image, label = _test_image(picked, data_source)
        return image, label, None
    if source == "Sample images":
        return _sample_image(picked.classes)
    return _uploaded_image()


def explanation_settings(classes: list[str], true_label: int | None):
    """(methods, class to explain: "predicted", "true" or an index, baseline, signed)."""
    methods = st.multiselect(
        "Methods", list(METHODS), format_func=METHODS.get, key="attr_methods", persist_state="page"
    )
    target_col, baseline_col, sign_col = st.columns(3)
    targets = ["predicted"] + (["true"] if true_label is not None else []) + classes

    def target_name(target: str) -> str:
        if target == "true":
            return f"the true class ({classes[true_label]})"
        return "each model's prediction" if target == "predicted" else target

    target = target_col.selectbox("Explain the class", targets, format_func=target_name, key="attr_target")
    baseline = baseline_col.selectbox(
        "Baseline (IG, DeepLift)",
        BASELINES,
        key="attr_baseline",
        help="black: an all-black image; blurred: this image blurred; mean: the training set's mean colour",
    )
    signed = sign_col.radio("Show", ["signed", "absolute"], horizontal=True, key="attr_signed") == "signed"
    if not methods:
        st.info("Pick at least one method.")
        st.stop()
    which_class = target if target in ("predicted", "true") else classes.index(target)
    return methods, which_class, baseline, signed


def explained(picked: Picked, image, methods: list[str], which_class, true_label: int | None, baseline: str) -> list:
    """Each model's explanation (science.attribution.Explanation); stops the page on an error."""
    try:
        return [
            _explain(run.run_id, m.epoch, m, image, tuple(methods), which_class, true_label, baseline)
            for run, m in zip(picked.runs, picked.models)
        ]
    except ResExplorerError as err:
        st.error(str(err))
        st.stop()


def input_section(image, decoded, found: list, classes: list[str], true_label: int | None) -> None:
    """What the models see, and what they say of it."""
    seen, said = st.columns([1, 3])
    with seen:
        st.image(enlarged(image, 6), caption="the 32x32 input the models see", width=192)
        if decoded is not None and decoded.drawable_at(192):
            st.image(decoded.rgb, caption="the original (centre crop and resize make the input)", width=192)
    with said:
        st.dataframe(explanations.top_rows(found, classes), hide_index=True, width="stretch")
        if true_label is not None:
            st.caption(f"True class: **{classes[true_label]}**.")


def maps_section(found: list, methods: list[str], image, signed: bool) -> None:
    """A row of maps per model, drawn on the server: crisp pixels, no chart library."""
    st.subheader("Attribution maps")
    per_column = st.radio("Colour scale", SCALES, horizontal=True, key="attr_scale") == SCALES[0]
    grid = explanations.attribution_grid(found, methods, image, signed, per_column)
    for pictures, captions in zip(grid.pictures, grid.captions):
        st.image(pictures, caption=captions, width=160, output_format="PNG")  # JPEG would smear single pixels
    st.caption(
        (
            "Integrated Gradients, DeepLift and Occlusion: red pixels raise the explained class's score, blue "
            "ones lower it. Saliency and SmoothGrad are gradients: their colour says only which way brightening "
            "a pixel would move the score, not what the pixel does"
            if signed
            else "Brighter pixels matter more"
        )
        + "; each column shares one colour scale, so models compare directly. Grad-CAM is non-negative by "
        + "construction. Seconds per map: "
        + explanations.seconds_per_map(found, methods)
        + "."
    )
    if per_column and grid.faint:
        st.info(
            f"On a shared scale the maps of {', '.join(grid.faint)} are faint: their attributions are over ten times "
            "smaller than another model's for the same method. Pick *one per map* to see their shape."
        )


def faithfulness_section(found: list, methods: list[str]) -> None:
    st.subheader("Faithfulness: deleting the pixels each map ranks highest")
    curves, text = st.columns([3, 1])
    with curves:
        st.plotly_chart(
            lines_chart(
                explanations.deletion_series(found, methods),
                "pixels removed (%)",
                "probability of the explained class",
                markers=False,
            ),
            width="stretch",
            key="attr_deletion",
            config=chart_config("attr_deletion"),
        )
        st.dataframe(explanations.deletion_areas(found, methods), hide_index=True)
    text.markdown(
        "**Deletion curves** (Petsiuk et al. 2018): the pixels a map ranks highest are removed first: Saliency "
        "and SmoothGrad by magnitude (their sign is only a direction), the others by value. A removed pixel takes "
        "the value of a heavily blurred copy of the image, so no grey squares appear that the net never saw "
        "(the artefact ROAD warns of). A faithful map makes the probability fall fast: a **lower area** under the "
        "curve (table, 0 to 1). The sparsely dotted line removes pixels in **random order** (mean of "
        f"{RANDOM_ORDERS} orders; the shaded band, and the table's ± column for its area, are "
        f"{explanations.BAND_SE} standard errors of that mean): a map is informative only where its curve "
        "falls below the band."
    )


def sanity_section(picked: Picked, found: list, image, methods: list[str], baseline: str, which_class) -> None:
    """On request; the results are kept for this image and these settings only."""
    with st.expander("Sanity check: randomise the model, layer by layer from the top (Adebayo et al. 2018)"):
        st.markdown(
            "If a map explains the model, it should change when the model's weights are replaced by random ones. "
            "Here the classifier, then each stage from the last, then the stem are randomised in turn; the chart "
            "shows how similar each map stays to the trained model's (rank correlation of absolute values). A "
            f"method still above {SanityCheck.FLAG_AT} after everything is random is flagged: it shows the image "
            "more than the model. Ties share their average rank; a gap in a line means a map was the same "
            "everywhere (an all-zero Grad-CAM map), where the correlation is undefined. The randomised layers "
            "also start from fresh BatchNorm statistics, so the random net works as a newly built one does."
        )
        settings = (
            explanations.image_key(image),
            tuple(r.run_id for r in picked.runs),
            tuple(methods),
            baseline,
            str(which_class),
        )
        if st.button("Run the check", key="attr_sanity"):
            with long_action("the randomisation check", "attr_sanity") as progress:
                checks = explanations.sanity_checks(picked.models, found, image, methods, baseline, progress=progress)
            st.session_state["attr_checks"] = (settings, checks)
        checked_with, checks = st.session_state.get("attr_checks", (None, None))
        if not checks or checked_with != settings:  # results of another image or setting are not shown
            return
        st.plotly_chart(
            lines_chart(
                explanations.sanity_series(checks), "randomised so far", "similarity to the trained model's map"
            ),
            width="stretch",
            key="attr_sanity_chart",
            config=chart_config("attr_sanity_chart"),
        )
        flagged = explanations.flagged(checks)
        if flagged:
            st.warning("Barely changed with random weights, so not trustworthy here: " + ", ".join(flagged) + ".")
        else:
            st.success("Every method's map changed once the weights were random.")


frame = page_frame("Attributions")
LINKS = [
    Linked("attr_source", "image", IMAGE_SOURCES),
    Linked("attr_sample", "sample", list(samples_by_name())),
    Linked("attr_methods", "methods", list(METHODS), many=True),
]
read_link("attributions", LINKS)
session_defaults(DEFAULTS)
st.title("Attributions")
st.markdown(INTRO)
picked_models = pick_trained_models(
    frame.runs_dir, "Models to explain (latest checkpoint of each run)", key="attr_runs", depth=56, shortcuts="both"
)
image_pixels, true_class, decoded_file = chosen_image(picked_models, frame.data_source)
chosen_methods, which_class, chosen_baseline, signed_maps = explanation_settings(picked_models.classes, true_class)
write_link(LINKS)
explanations_found = explained(picked_models, image_pixels, chosen_methods, which_class, true_class, chosen_baseline)
input_section(image_pixels, decoded_file, explanations_found, picked_models.classes, true_class)
maps_section(explanations_found, chosen_methods, image_pixels, signed_maps)
faithfulness_section(explanations_found, chosen_methods)
sanity_section(picked_models, explanations_found, image_pixels, chosen_methods, chosen_baseline, which_class)
