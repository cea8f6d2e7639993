"""Test-time augmentation: what each strategy does to a prediction, on your
own images and on the test set, and what it costs."""

import streamlit as st

from resexplorer.data.images import ACCEPTED, UPLOAD_MB, DecodedImage, decode_many, decode_upload, enlarged
from resexplorer.data.samples import class_in_name, samples_by_name
from resexplorer.errors import ResExplorerError
from resexplorer.science.imagenet import CROP, RESIZE, classify, download_weights, load_imagenet_model, weights_present
from resexplorer.science.tta import MERGE_ABOUT, MERGES, STRATEGIES
from resexplorer.services import analysis, tta_report
from resexplorer.services.figures import chart_config, heatmap, probability_bars
from ui.choices import Linked, read_link, session_defaults, write_link
from ui.long_action import long_action
from ui.page_state import Analyses, Picked, Work, pick_trained_models
from ui.sidebar import page_frame
from ui.text import literal

INTRO = (
    "Show the model several views of an image (mirrored, shifted, cropped, zoomed) and merge its answers. "
    "The paper tested its CIFAR nets on the image alone and its ImageNet nets on 10 crops (transposed to CIFAR "
    "here); fast CIFAR training averages a mirror and 1-pixel shifts, and *selective* TTA spends those extra views "
    "only on the images the model is unsure of. "
    "Picking the single view the model is *most sure of* is a popular misreading: it is here too, so you "
    "can see what it does. Every answer comes with its cost."
)
DEFAULT_SAMPLES = ("cat-chelsea.png", "coffee-cup.png", "airplane_00.jpg")
IMAGE_SOURCES = ["Sample images", "Upload"]
DEFAULTS = {"tta_merge": "mean probs", "tta_gallery": "10-crop", "tta_n": analysis.KINDS["tta_testset"].defaults["n"]}
CORRUPTION_IMAGES = analysis.KINDS["tta_corruptions"].defaults["n"]
TEST_SIZES = [500, 1000, 2000, 5000, 10000]
IMAGENET_DOWNLOAD = "imagenet-download"  # the long action's key
SHIPPED_SCORES = (
    "Shipped with this reference run: scored when it was built, so its milliseconds are the build machine's "
    "(a CPU). Other numbers of images, or runs of your own, are scored here on request."
)


@st.cache_data(show_spinner=False, max_entries=64)
def _answers(run_path: str, epoch: int, _loaded, pixels) -> dict:
    """Every strategy x merge of one image on one model's checkpoint, once:
    reruns (a changed true class, another merge shown) and later visits
    reuse it, costs as first measured."""
    return tta_report.image_answers(_loaded, pixels)


@st.cache_resource(show_spinner="Loading ImageNet ResNet-50…")
def _imagenet():
    return load_imagenet_model()


def _draw(fig, key: str) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config=chart_config(key))


def chosen_images() -> list[DecodedImage]:
    """Samples or uploads, decoded; stops the page while there are none."""
    source = st.radio("Images", IMAGE_SOURCES, horizontal=True, key="tta_source")
    if source == "Sample images":
        paths = samples_by_name(photos_first=True)
        session_defaults({"tta_samples": [name for name in DEFAULT_SAMPLES if name in paths]})
        names = st.multiselect("Samples", list(paths), key="tta_samples", persist_state="page")
        decoded, problems = [decode_upload(name, paths[name].read_bytes()) for name in names], []
    else:
        uploads = st.file_uploader(
            "Image files", type=list(ACCEPTED), accept_multiple_files=True, key="tta_upload", max_upload_size=UPLOAD_MB
        )
        decoded, problems = decode_many((u.name, u.getvalue()) for u in uploads or [])
    for problem in problems:
        st.error(literal(problem))
    if not decoded:
        st.info(
            "Pick samples or upload images (jpg, png, webp, bmp, gif, tiff). Each is centre-cropped to a square "
            "and resized to the 32x32 pixels the CIFAR models see."
        )
        st.stop()
    st.caption(
        "The CIFAR models see 32x32 pixels, as they were trained: each image's centre square, resized. Large photos "
        "lose most of their detail that way; the ImageNet classifier at the bottom sees them at 224x224."
    )
    return decoded


def shown_choices() -> tuple[str, str]:
    """The merge the charts and the gallery show, and the gallery's strategy."""
    merge_col, strategy_col = st.columns(2)
    merge = merge_col.selectbox(
        "Merge for the charts and the view gallery", list(MERGES), key="tta_merge", persist_state="page"
    )
    strategy = strategy_col.selectbox(
        "Strategy for the view gallery", list(STRATEGIES), key="tta_gallery", persist_state="page"
    )
    return merge, strategy


def legend() -> None:
    """What each strategy and merge is, in the package's own words."""
    with st.expander("What the strategies and merges are"):
        st.markdown("\n".join(f"- **{name}**: {strategy.about}" for name, strategy in STRATEGIES.items()))
        st.markdown("\n".join(f"- **{name}**: {about}" for name, about in MERGE_ABOUT.items()))


def _true_class(number: int, name: str, classes: list[str]) -> int | None:
    """The class the user says the image shows (guessed from a sample's name), or None."""
    options = ["unknown", *classes]
    guess = class_in_name(name, classes)
    said = st.selectbox("True class", options, index=options.index(guess) if guess else 0, key=f"tta_truth_{number}")
    return None if said == "unknown" else classes.index(said)


def _answer_columns() -> dict:
    """The answer table's cost columns, first and narrow (as wide as "passes"
    and "1334.7" need, under Streamlit's "small" 75 px), so that with each
    merge's short cells ("cat 87%") the table fits the three quarters of the
    page it has: at 1280 px, unless a class name is long (automobile). The
    three stay pinned where the merges must be scrolled to."""
    return {
        "strategy": st.column_config.TextColumn("strategy", pinned=True),
        "passes": st.column_config.NumberColumn(
            "passes",
            format="%d",
            width=60,
            pinned=True,
            help="Forward passes: views of the image run through the model",
        ),
        "ms": st.column_config.NumberColumn(
            "≈ ms",
            format="%.1f",
            width=64,
            pinned=True,
            help="Milliseconds for this image: the strategy's share of one pass that ran every view the strategies "
            "share, by the views it runs. The model was warmed up first, so the first image's costs compare with "
            "the others'.",
        ),
    }


def _model_answers(number: int, model: str, answers: dict, pixels, classes: list[str], merge: str, strategy: str):
    rows = tta_report.answer_rows(answers, classes, merge)
    st.dataframe(rows, hide_index=True, width="stretch", column_config=_answer_columns())
    _draw(probability_bars(classes, tta_report.merged_probabilities(answers, merge)), f"tta_bars_{number}_{model}")
    pictures, captions = tta_report.view_gallery(pixels, answers[strategy][merge], classes)
    st.image(pictures, caption=captions, width=96)


def image_section(number: int, image: DecodedImage, chosen: Picked, merge: str, strategy: str):
    """One image: its input, its true class, and a tab per model with every
    strategy's answer. Returns the true class and each model's answers."""
    st.subheader(literal(image.name))
    pixels = image.model_input()  # uint8 [3, 32, 32]
    about, tabs_col = st.columns([1, 3])
    with about:
        st.image(enlarged(pixels, 5), caption="the 32x32 input", width=160)
        width, height = image.original_size
        st.caption(literal(f"{width}x{height} pixels" + "".join(f"; {note}" for note in image.notes)))
        truth = _true_class(number, image.name, chosen.classes)
    per_model = []
    with tabs_col:
        for tab, loaded, run in zip(st.tabs([m.name for m in chosen.models]), chosen.models, chosen.runs):
            with tab:
                answers = _answers(str(run.path), loaded.epoch, loaded, pixels)
                _model_answers(number, loaded.name, answers, pixels, chosen.classes, merge, strategy)
                per_model.append(answers)
    return truth, per_model


def images_section(images: list[DecodedImage], chosen: Picked, merge: str, strategy: str):
    """Every image; returns their true classes (None: unknown) and answers [image][model]."""
    truths, answers = [], []
    for number, image in enumerate(images):
        truth, per_model = image_section(number, image, chosen, merge, strategy)
        truths.append(truth)
        answers.append(per_model)
    return truths, answers


def accuracy_section(truths: list, answers: list, chosen: Picked) -> None:
    """From the answers above: nothing runs again."""
    known = [k for k, truth in enumerate(truths) if truth is not None]
    if not known:
        return
    st.subheader(f"Accuracy over the {len(known)} image(s) with a true class")
    for index, loaded in enumerate(chosen.models):
        grid = tta_report.accuracy_on_known([answers[k][index] for k in known], [truths[k] for k in known])
        st.markdown(f"**{loaded.name}**, accuracy (%)")
        fig = heatmap(grid, list(MERGES), list(STRATEGIES), "accuracy %", text_format=".0f", zmin=0, zmax=100)
        _draw(fig, f"tta_upload_acc_{loaded.name}")


def _scores_of(run, loaded, n_clean: int, merge: str, analyses: Analyses) -> None:
    """One run's scores: shipped with a reference run, cached from an
    earlier scoring, or scored now on request."""
    epoch = analysis.kept_moments(run)[-1][1]
    st.markdown(f"#### {loaded.name} (epoch {epoch})")
    clean = analysis.cached(run, epoch, "tta_testset", n=n_clean)
    corrupted = analysis.cached(run, epoch, "tta_corruptions")
    # Records scored by an earlier version show until the run is scored again, what they lack left blank.
    older_clean = None if clean else analysis.older_tta_record(run, epoch, "tta_testset", n=n_clean)
    older_corrupted = None if corrupted else analysis.older_tta_record(run, epoch, "tta_corruptions")
    again = " again" if older_clean or older_corrupted else ""
    what = "Score every strategy on the test set" if clean is None else "Score every strategy under the corruptions"
    label = f"{what}{again} ({loaded.name}; about 1-5 minutes on a CPU)"
    # the corruptions only once the clean scores came: else the images are unusable, and the message says why
    work = [Work(run, epoch, "tta_testset", {"n": n_clean}), Work(run, epoch, "tta_corruptions")]
    clean, corrupted = analyses.on_request(work, label, f"tta_eval_{run.run_id}", stop_at_failure=True)
    clean, corrupted = clean or older_clean, corrupted or older_corrupted
    if clean:
        grid, merges, strategies, costs = tta_report.clean_scores(clean, merge)
        scores, cost = st.columns([3, 2])  # room for the cost table whole: every column read, none cut
        key = f"tta_clean_{run.run_id}"
        scores.plotly_chart(
            heatmap(grid, merges, strategies, "accuracy %", text_format=f".{tta_report.ACCURACY_DECIMALS}f"),
            width="stretch",
            key=key,
            config=chart_config(key),
        )
        columns = {
            "accuracy %": st.column_config.NumberColumn("accuracy %", format=f"%.{tta_report.ACCURACY_DECIMALS}f"),
            "passes per image": st.column_config.NumberColumn("passes", help="Forward passes per image, on average"),
            "ms per image": st.column_config.NumberColumn("ms", help="Milliseconds per image, the strategy alone"),
        }
        cost.dataframe(costs, hide_index=True, column_config=columns)
        st.caption(tta_report.testset_caption(clean, merge))
        if run.run_id in analyses.shipped and analysis.shipped_beside(run, epoch, "tta_testset", n=n_clean):
            st.caption(SHIPPED_SCORES)
    if corrupted:
        grid, strategies, cases = tta_report.corruption_changes(corrupted, merge)
        _draw(
            heatmap(grid, strategies, cases, "points vs none", diverging=True, text_format="+.1f"),
            f"tta_corrupt_{run.run_id}",
        )
        st.caption(tta_report.corruptions_caption(corrupted, merge))
    for note in dict.fromkeys(tta_report.unscored_note(record) for record in (clean, corrupted) if record):
        if note:
            st.caption(note)


def testset_section(chosen: Picked, data_source: str, merge: str) -> None:
    """Every strategy x merge scored on the test split: on request, then cached per run."""
    st.header("Which strategies really help? The test set")
    st.markdown(
        "A handful of photos proves little. Here every strategy x merge is scored on the test split, clean and "
        "under five corruptions at three severities, with the cost per image: forward passes, on average for "
        "selective TTA, whose cost depends on how many images the model is unsure of, and milliseconds. Results "
        "are cached per run."
    )
    n_clean = st.select_slider(
        "Test images to score (clean)",
        TEST_SIZES,
        key="tta_n",
        persist_state="page",
        help=f"A class-balanced subset of the test split; the corruptions use {CORRUPTION_IMAGES} images.",
    )
    analyses = Analyses(data_source, chosen.offer.shipped)
    for run, loaded in zip(chosen.runs, chosen.models):
        _scores_of(run, loaded, n_clean, merge, analyses)


def _switch_imagenet_off() -> None:
    st.session_state["tta_imagenet"] = False


def imagenet_section(images: list[DecodedImage]) -> None:
    st.header("What is it really? An ImageNet ResNet-50")
    st.markdown(
        "CIFAR-10 knows ten classes at 32x32. For a real photo, torchvision's ResNet-50 with ImageNet weights "
        "labels it among 1,000 classes. What it does, exactly: the shorter side resized to "
        f"{RESIZE} pixels, then the paper's 10 crops of {CROP}x{CROP} (corners, centre and their mirrors), "
        "probabilities averaged. That is not quite the paper's test: the paper resized the shorter side to 256 "
        f"and tested its own nets; {RESIZE} is the preprocessing of torchvision's IMAGENET1K_V2 weights, "
        "trained with a modern recipe (long schedule, strong augmentation) on torchvision's v1.5 ResNet-50 "
        "(the downsampling stride on the 3x3 convolution, not the first 1x1)."
    )
    if not st.toggle(
        "Label these images with ImageNet ResNet-50 (downloads about 100 MB on first use)", key="tta_imagenet"
    ):
        return
    try:
        if not weights_present():  # fetched here, not in the cached loader, so it can show progress
            with long_action(
                "downloading the ImageNet ResNet-50 weights (about 100 MB)",
                IMAGENET_DOWNLOAD,
                on_cancel=_switch_imagenet_off,  # or the toggle, still on, would start it again
            ) as progress:
                download_weights(progress)
        net = _imagenet()
    except ResExplorerError as err:
        st.error(literal(str(err)))
        return
    for image in images:
        top = classify(net, image.rgb)
        st.markdown(f"**{literal(image.name)}**: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in top))


frame = page_frame("Test-time augmentation")
LINKS = [
    Linked("tta_source", "images", IMAGE_SOURCES),
    Linked("tta_samples", "samples", list(samples_by_name(photos_first=True)), many=True),
    Linked("tta_merge", "merge", list(MERGES)),
    Linked("tta_gallery", "strategy", list(STRATEGIES)),
]
read_link("tta", LINKS)
session_defaults(DEFAULTS)
st.title("Test-time augmentation")
st.markdown(INTRO)
picked = pick_trained_models(
    frame.runs_dir, "Models (latest checkpoint of each run)", key="tta_runs", depth=56, shortcuts="on"
)
decoded_images = chosen_images()
merge_shown, gallery_strategy = shown_choices()
write_link(LINKS)
legend()
true_classes, all_answers = images_section(decoded_images, picked, merge_shown, gallery_strategy)
accuracy_section(true_classes, all_answers, picked)
testset_section(picked, frame.data_source, merge_shown)
imagenet_section(decoded_images)
