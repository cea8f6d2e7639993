"""Test-time augmentation: what each strategy does to a prediction, on your
own images and on the test set, and what it costs."""

import numpy as np
import streamlit as st

from resexplorer.data.images import ACCEPTED, decode_many, decode_upload
from resexplorer.data.samples import cifar_sample_paths, photo_paths
from resexplorer.errors import ResExplorerError
from resexplorer.science.imagenet import classify, load_imagenet_model
from resexplorer.science.tta import MERGES, STRATEGIES, predict_all, view_images
from resexplorer.services import analysis
from resexplorer.services.figures import chart_config, heatmap, probability_bars
from ui.run_picker import pick_trained_models
from ui.sidebar import page_frame

frame = page_frame("Test-time augmentation")
runs_dir, data_source = frame.runs_dir, frame.data_source

st.title("Test-time augmentation")
st.markdown(
    "Show the model several views of an image (mirrored, shifted, cropped, zoomed) and merge its answers. "
    "The paper tested ImageNet models on 10 crops; fast CIFAR training averages a mirror and 1-pixel shifts. "
    "Picking the single view the model is *most sure of* is a popular misreading: it is here too, so you "
    "can see what it does. Every answer comes with its cost."
)

# --- models ----------------------------------------------------------------------------------
chosen = pick_trained_models(runs_dir, "Models (latest checkpoint of each run)", key="tta_runs", depth=56, shortcuts="on")
models, classes = chosen.models, chosen.classes

# --- images ------------------------------------------------------------------------------------
source = st.radio("Images", ["Sample images", "Upload"], horizontal=True, key="tta_source")
if source == "Sample images":
    paths = {p.name: p for p in [*photo_paths(), *cifar_sample_paths()]}
    picked = st.multiselect("Samples", list(paths), default=[n for n in ("cat-chelsea.png", "coffee-cup.png", "airplane_00.jpg") if n in paths], key="tta_samples")
    decoded = [decode_upload(name, paths[name].read_bytes()) for name in picked]
    problems = []
else:
    uploads = st.file_uploader("Image files", type=list(ACCEPTED), accept_multiple_files=True, key="tta_upload")
    decoded, problems = decode_many((u.name, u.getvalue()) for u in uploads or [])
for problem in problems:
    st.error(problem)
if not decoded:
    st.info("Pick samples or upload images (jpg, png, webp, bmp, gif, tiff). Each is centre-cropped to a square and resized to the 32x32 pixels the CIFAR models see.")
    st.stop()
st.caption(
    "The CIFAR models see 32x32 pixels, as they were trained: each image's centre square, resized. Large photos lose "
    "most of their detail that way; the ImageNet classifier at the bottom sees them at 224x224."
)

cols = st.columns(2)
merge_shown = cols[0].selectbox("Merge for the charts and the view gallery", list(MERGES), index=1, key="tta_merge")
gallery_strategy = cols[1].selectbox("Strategy for the view gallery", list(STRATEGIES), index=list(STRATEGIES).index("10-crop"), key="tta_gallery")



@st.cache_data(show_spinner=False, max_entries=64)
def _every_strategy(run_path: str, epoch: int, _loaded, pixels: np.ndarray) -> dict:
    """Every strategy x merge of one image on one model's checkpoint, once:
    reruns (a changed true class, another merge shown) and later visits
    reuse it, costs as first measured."""
    return {strategy: predict_all(_loaded.model, pixels, strategy, _loaded.inputs) for strategy in STRATEGIES}


# --- per image -----------------------------------------------------------------------------------
truths = {}
answers = {}  # (model index, image number) -> every strategy x merge of that image
for number, image in enumerate(decoded):
    st.subheader(image.name)
    pixels = image.model_input()[None]  # uint8 [1, 3, 32, 32]
    left, right = st.columns([1, 3])
    with left:
        st.image(pixels[0].transpose(1, 2, 0).repeat(5, 0).repeat(5, 1), caption="the 32x32 input", width=160)
        width, height = image.original_size
        st.caption(f"{width}x{height} pixels" + "".join(f"; {note}" for note in image.notes))
        stem = image.name.rsplit("_", 1)[0]
        options = ["unknown", *classes]
        truth = st.selectbox("True class", options, index=options.index(stem) if stem in classes else 0, key=f"tta_truth_{number}")
        truths[number] = None if truth == "unknown" else classes.index(truth)
    with right:
        tabs = st.tabs([m.name for m in models])
        for index, (tab, loaded, run) in enumerate(zip(tabs, models, chosen.runs)):
            with tab:
                rows, bars = [], {}
                results = answers[index, number] = _every_strategy(str(run.path), loaded.epoch, loaded, pixels)
                for strategy in STRATEGIES:
                    row = {"strategy": strategy}
                    for merge, result in results[strategy].items():
                        top = int(result.predictions[0])
                        row[merge] = f"{classes[top]} {100 * result.probabilities[0, top]:.0f}%"
                    shown = results[strategy][merge_shown]
                    bars[strategy] = shown.probabilities[0]
                    row["cost"] = f"{shown.forward_passes} pass{'es' if shown.forward_passes > 1 else ''}, {shown.milliseconds:.0f} ms"
                    rows.append(row)
                st.dataframe(rows, hide_index=True, width="stretch")
                st.plotly_chart(probability_bars(classes, bars), width="stretch", key=f"tta_bars_{number}_{loaded.name}", config=chart_config(f"tta_bars_{number}_{loaded.name}"))
                views = view_images(pixels, gallery_strategy)
                result = results[gallery_strategy][merge_shown]
                view_probs = np.exp(result.view_logits[0] - result.view_logits[0].max(1, keepdims=True))
                view_probs /= view_probs.sum(1, keepdims=True)
                captions = [f"{name}: {classes[int(p.argmax())]} {100 * p.max():.0f}%" for (name, _), p in zip(views, view_probs)]
                st.image([v[0].transpose(1, 2, 0).repeat(3, 0).repeat(3, 1) for _, v in views], caption=captions, width=96)

# --- accuracy over the uploads ---------------------------------------------------------------------
known = [k for k, t in truths.items() if t is not None]
if known:
    st.subheader(f"Accuracy over the {len(known)} image(s) with a true class")
    for index, loaded in enumerate(models):  # from the answers above: nothing runs again
        z = [[100 * sum(int(answers[index, k][s][m].predictions[0]) == truths[k] for k in known) / len(known) for m in MERGES] for s in STRATEGIES]
        st.markdown(f"**{loaded.name}**, accuracy (%)")
        st.plotly_chart(heatmap(z, list(MERGES), list(STRATEGIES), "accuracy %", text_format=".0f", zmin=0, zmax=100), width="stretch", key=f"tta_upload_acc_{loaded.name}", config=chart_config(f"tta_upload_acc_{loaded.name}"))

# --- the test set ---------------------------------------------------------------------------------
st.header("Which strategies really help? The test set")
st.markdown(
    "A handful of photos proves little. Here every strategy x merge is scored on the test split, clean and under "
    "five corruptions at three severities, with the cost per image. Results are cached per run."
)


@st.cache_resource(show_spinner="Loading test images…", max_entries=2)
def _pool(source: str):
    return analysis.image_pool(source)


n_clean = st.select_slider("Test images to score (clean)", [500, 1000, 2000, 5000, 10000], value=10000, key="tta_n", help="A class-balanced subset of the test split; the corruptions use 500 images.")
for run, loaded in zip(chosen.runs, models):
    run_id = run.run_id
    epoch = analysis.checkpoint_moments(run)[-1][1]
    st.markdown(f"#### {loaded.name} (epoch {epoch})")
    clean, corrupted = analysis.cached(run, epoch, "tta_testset", n=n_clean), analysis.cached(run, epoch, "tta_corruptions")
    if (clean is None or corrupted is None) and st.button(f"Score every strategy on the test set ({loaded.name}; about 1-5 minutes on a CPU)", key=f"tta_eval_{run_id}"):
        try:
            pool = analysis.pool_for(run, _pool(data_source))
            if pool.note:
                st.info(pool.note)
            bar = st.progress(0.0)
            for kind, settings in (("tta_testset", {"n": n_clean}), ("tta_corruptions", {})):
                if analysis.cached(run, epoch, kind, **settings) is None:
                    analysis.compute(run, epoch, kind, pool, progress=lambda f, text, k=kind: bar.progress(f, text=f"{k.replace('_', ' ')}: {text}"), store_beside=run_id not in chosen.offer.shipped, **settings)
            bar.empty()
        except ResExplorerError as err:
            st.error(str(err))
        clean, corrupted = analysis.cached(run, epoch, "tta_testset", n=n_clean), analysis.cached(run, epoch, "tta_corruptions")
    if clean:
        strategies, merges = clean["strategies"], clean["merges"]
        z = [[100 * clean["accuracy"][s][m] for m in merges] for s in strategies]
        left, right = st.columns([3, 1])
        left.plotly_chart(heatmap(z, merges, strategies, "accuracy %", text_format=".2f"), width="stretch", key=f"tta_clean_{run_id}", config=chart_config(f"tta_clean_{run_id}"))
        right.dataframe([{"strategy": s, "views": clean["views"][s], "ms per image": round(clean["ms_per_image"][s], 2)} for s in strategies], hide_index=True)
        st.caption(f"Accuracy (%) on {clean['n_images']:,} test images of {clean['images']}.")
    if corrupted:
        acc = corrupted["accuracy"]
        cases = [c for c in acc if c != "clean"]
        others = [s for s in corrupted["strategies"] if s != "none"]
        z = [[100 * (acc[c][s][merge_shown] - acc[c]["none"][merge_shown]) for s in others] for c in ["clean", *cases]]
        st.plotly_chart(heatmap(z, others, ["clean", *cases], "points vs none", diverging=True, text_format="+.1f"), width="stretch", key=f"tta_corrupt_{run_id}", config=chart_config(f"tta_corrupt_{run_id}"))
        st.caption(f"Accuracy change in points against no TTA ({merge_shown}), on {corrupted['n_images']:,} test images; severities 1 (mild) to 3. Blue helps, red hurts.")

# --- a real-photo classifier -------------------------------------------------------------------------
st.header("What is it really? An ImageNet ResNet-50")
st.markdown(
    "CIFAR-10 knows ten classes at 32x32. For a real photo, torchvision's ResNet-50 with ImageNet weights (the "
    "paper's 50-layer bottleneck net) labels it among 1,000 classes, tested the paper's way: the shorter side "
    "resized to 256, then 10 crops of 224x224 (corners, centre and their mirrors), probabilities averaged."
)
if st.toggle("Label these images with ImageNet ResNet-50 (downloads about 100 MB on first use)", key="tta_imagenet"):

    @st.cache_resource(show_spinner="Loading ImageNet ResNet-50…")
    def _imagenet():
        return load_imagenet_model()

    try:
        net = _imagenet()
    except ResExplorerError as err:
        st.error(str(err))
    else:
        for image in decoded:
            top = classify(net, image.rgb)
            st.markdown(f"**{image.name}**: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in top))
