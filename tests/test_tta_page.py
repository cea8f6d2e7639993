"""AppTest of the test-time augmentation page."""

import json
import re

import pytest
import torch
from helpers import ROOT, app, drawn, figures, trace_types, values
from image_corpus import corpus
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from resexplorer.data.images import decode_upload
from resexplorer.science import imagenet
from resexplorer.science.inference import load_run_model
from resexplorer.science.tta import MERGES, STRATEGIES, predict
from resexplorer.services import analysis
from resexplorer.services.reference import reference_runs


def test_samples_get_a_table_per_model_bars_and_a_view_gallery(two_runs):
    at = app("pages/tta.py")
    assert not at.exception and not at.error
    tables = [t.value for t in at.dataframe]
    assert len(tables) == 3  # 3 default samples x 1 model
    assert tables[0]["strategy"].tolist() == list(STRATEGIES) and set(MERGES) <= set(tables[0].columns)
    assert tables[0].columns.tolist()[:3] == ["strategy", "passes", "ms"]  # the cost before the merges
    assert tables[0].set_index("strategy").loc["10-crop", "passes"] == 10
    config = json.loads(at.dataframe[0].proto.columns)  # the cost columns as the browser gets them: narrow
    assert (config["ms"]["label"], config["ms"]["type_config"]["format"]) == ("≈ ms", "%.1f")
    assert config["passes"]["type_config"]["format"] == "%d" and config["passes"]["width"] <= 75  # narrow
    bars = [fig for fig in figures(at) if trace_types(fig) == {"bar"}]
    assert len(bars) == 3 and [trace["name"] for trace in bars[0]["data"]] == list(STRATEGIES)
    none = next(trace for trace in bars[0]["data"] if trace["name"] == "none")
    assert sum(values(none["y"])) == pytest.approx(100, abs=0.1)
    galleries = [len(element.proto.imgs) for element in at.get("image")]
    assert galleries.count(10) == 3  # a 10-crop gallery per image, beside each 32x32 input
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert any(c.startswith("mirrored, centre: ") for c in captions)
    said = " ".join(m.value for m in at.markdown)
    assert all(strategy.about in said for strategy in STRATEGIES.values())  # what each strategy is, said once
    assert "the paper's ImageNet 10-crop transposed to CIFAR" in said and "the paper's 10-crop" not in said


def test_every_corpus_file_uploaded_at_once(two_runs):
    at = app("pages/tta.py")
    at.radio(key="tta_source").set_value("Upload").run()
    files = corpus()
    at.file_uploader(key="tta_upload").set_value(
        [(name, data, "application/octet-stream") for name, (data, _) in files.items()]
    ).run()
    assert not at.exception
    bad = [name for name, (_, expected) in files.items() if expected != "ok"]
    assert sorted(drawn(e).split(":")[0] for e in at.error) == sorted(bad)
    assert [drawn(s) for s in at.subheader][: len(files) - len(bad)] == [n for n, (_, e) in files.items() if e == "ok"]


def test_true_classes_give_accuracy_and_the_test_set_is_scored_once(two_runs):
    at = app("pages/tta.py")
    at.selectbox(key="tta_truth_0").set_value(at.selectbox(key="tta_truth_0").options[1]).run()
    assert any("Accuracy over the 1 image" in s.value for s in at.subheader)
    (accuracy,) = [fig for fig in figures(at) if "heatmap" in trace_types(fig)]
    loaded = load_run_model(two_runs["resnet-8"])
    image = decode_upload(
        "cat-chelsea.png", (ROOT / "assets/samples/photos/cat-chelsea.png").read_bytes()
    ).model_input()[None]
    expected = [
        100.0 * (int(predict(loaded.model, image, s, m, loaded.inputs).predictions[0]) == 0)
        for s in STRATEGIES
        for m in MERGES
    ]
    assert [v for row in accuracy["data"][0]["z"] for v in row] == expected  # class 0 is options[1]
    assert (accuracy["data"][0]["zmin"], accuracy["data"][0]["zmax"]) == (0, 100)
    # a single image: every cell 0 or 100, on a bar that still runs 0-100 in whole percents
    assert accuracy["data"][0]["colorbar"]["tickformat"] == ".0f"
    assert {t for row in accuracy["data"][0]["text"] for t in row} <= {"0", "100"}
    button = next(b for b in at.button if b.key.startswith("tta_eval_"))
    button.click().run()
    assert not at.exception and not at.error
    assert not any(b.key.startswith("tta_eval_") for b in at.button)  # answered: gone at once
    maps = [fig for fig in figures(at) if "heatmap" in trace_types(fig)]
    assert len(maps) == 3  # uploads' accuracy, clean test set, corruptions
    rows = values(maps[2]["data"][0]["y"])
    assert rows[0] == "clean" and len(rows) == 16

    run = two_runs["resnet-8"]
    clean = analysis.cached(run, run.metrics("epoch")[-1]["epoch"], "tta_testset", n=10000)
    drawn = maps[1]["data"][0]
    assert values(drawn["y"]) == clean["strategies"] and values(drawn["x"]) == clean["merges"]
    expected = [[100 * clean["accuracy"][s][m] for m in clean["merges"]] for s in clean["strategies"]]
    assert [v for row in drawn["z"] for v in row] == pytest.approx([v for row in expected for v in row])  # the scores
    assert all(text for row in drawn["text"] for text in row)  # every cell written
    written = [format(v, ".1f") for row in expected for v in row]  # one decimal: the second is below the noise
    assert [text for row in drawn["text"] for text in row] == written and "%{text}" in drawn["hovertemplate"]
    changes = maps[2]["data"][0]
    assert all(re.fullmatch(r"[+-]\d+\.\d", text) for row in changes["text"] for text in row if text)
    costs = next(t.value for t in at.dataframe if "passes per image" in t.value.columns)
    selective = costs.set_index("strategy").loc["selective"]  # its accuracy against its average cost
    assert selective["passes per image"] == round(clean["passes_per_image"]["selective"], 2)
    assert selective["accuracy %"] == round(100 * clean["accuracy"]["selective"]["mean probs"], 1)  # as drawn
    assert not any("not yet scored" in c.value for c in at.caption)
    at = app("pages/tta.py")  # cached: no button, charts at once
    assert not any(b.key.startswith("tta_eval_") for b in at.button)
    at.select_slider(key="tta_n").set_value(500).run()  # another subset is scored on request
    assert any(b.key.startswith("tta_eval_") for b in at.button)


def test_imagenet_offline_says_what_to_do(two_runs, monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    at = app("pages/tta.py")
    at.toggle(key="tta_imagenet").set_value(True).run()
    assert not at.exception and any("put it at" in e.value for e in at.error)
    from resexplorer.science.imagenet import CROP, RESIZE

    said = " ".join(m.value for m in at.markdown)  # the preprocessing the classifier really uses
    assert f"resized to {RESIZE} " in said and f"10 crops of {CROP}x{CROP} " in said


class _Download:
    """The weights' server, as urlopen hands it back: 2 MB, in 1 MB blocks;
    the run that reads it is stopped after the first block, as a click on
    Cancel (or anything else) stops it."""

    headers = {"Content-Length": str(2 << 20)}

    def __init__(self):
        self.blocks = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size):
        self.blocks += 1
        if self.blocks > 1:
            raise StopException()
        return bytes(size)


def test_the_imagenet_download_shows_its_progress_and_can_be_cancelled(two_runs, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    served = []
    monkeypatch.setattr(
        imagenet.urllib.request, "urlopen", lambda url, timeout: served.append(_Download()) or served[-1]
    )
    at = app("pages/tta.py")
    at.toggle(key="tta_imagenet").set_value(True).run()
    (bar,) = at.get("progress")
    assert bar.proto.text.startswith("downloaded 1 of 2 MB · ") and bar.proto.value == 50
    (cancel,) = [b for b in at.button if b.label == "Cancel"]
    assert not [p for p in (tmp_path / "hub").rglob("*") if p.is_file()]  # the partial file went with the stopped run
    cancel.click().run()
    assert not at.exception and [t.value for t in at.toast] == [
        "Cancelled: downloading the ImageNet ResNet-50 weights (about 100 MB). What had finished is kept."
    ]
    assert not at.get("progress") and not imagenet.weights_present()
    assert len(served) == 1 and at.toggle(key="tta_imagenet").value is False  # switched off, not restarted


def test_the_residual_net_is_the_default_and_the_toggle_adds_the_plain_one(two_runs):
    at = app("pages/tta.py")
    assert at.multiselect(key="tta_runs").value == [two_runs["resnet-8"].run_id]
    at.segmented_control(key="tta_runs:shortcuts").set_value("both").run()
    assert not at.exception
    assert [t.label for t in at.tabs][:2] == ["plain-8", "resnet-8"]  # a tab per model for each image


def test_a_test_set_record_of_an_earlier_version_shows_what_it_lacks_as_not_yet_scored(two_runs):
    from resexplorer.storage import atomic_write_json

    run = two_runs["resnet-8"]
    epoch = analysis.kept_moments(run)[-1][1]
    strategies = ["none", "flip", "flip+translate", "5-crop", "10-crop", "multi-scale"]
    merges = ["mean logits", "mean probs", "geometric mean", "max-confidence", "majority vote"]
    older = {
        "kind": "tta_testset",
        "settings": {"split": "test", "n": 10000},
        "n_images": 24,
        "images": "images",
        "strategies": strategies,
        "merges": merges,
        "accuracy": {s: {m: 0.5 for m in merges} for s in strategies},
        "ms_per_image": dict.fromkeys(strategies, 0.1),
        "views": {s: len(STRATEGIES[s].views) for s in strategies},
    }
    folder = run.path / analysis.ANALYSIS_DIR / f"epoch-{epoch:04d}"
    atomic_write_json(older, folder / analysis._file_name("tta_testset", older["settings"]))  # as scoring 1 named it
    assert analysis.cached(run, epoch, "tta_testset") is None  # not taken for a current record
    at = app("pages/tta.py")
    assert not at.exception and not at.error
    (drawn,) = [fig["data"][0] for fig in figures(at) if "heatmap" in trace_types(fig)]
    assert values(drawn["y"]) == list(STRATEGIES) and values(drawn["x"]) == list(MERGES)  # no geometric mean
    rows = dict(zip(list(STRATEGIES), drawn["z"]))
    assert rows["selective"] == [None] * len(MERGES) and rows["flip"][list(MERGES).index("mean probs")] == 50
    assert all(row[list(MERGES).index("majority vote")] is None for row in drawn["z"])  # its old tie-break
    assert any("selective, majority vote not yet scored" in c.value for c in at.caption)
    button = next(b for b in at.button if b.key.startswith("tta_eval_"))
    assert " again " in button.label
    button.click().run()
    assert not at.exception and not at.error
    assert not any("not yet scored" in c.value for c in at.caption)
    current = analysis.cached(run, epoch, "tta_testset")
    assert current["scoring"] == 2 and "selective" in current["accuracy"]


def test_the_selective_gallery_shows_every_view_and_says_which_ran(two_runs):
    at = app("pages/tta.py")
    at.selectbox(key="tta_gallery").set_value("selective").run()
    assert not at.exception and not at.error
    galleries = [element.proto.imgs for element in at.get("image") if len(element.proto.imgs) == 6]
    assert len(galleries) == 3  # one per default sample
    names = [view.name for view in STRATEGIES["selective"].views]
    for gallery in galleries:
        captions = [img.caption for img in gallery]
        assert [c.split(": ")[0] for c in captions] == names and "not run" not in captions[0]
        ran = [not c.endswith(": not run") for c in captions]
        assert all(ran) or not any(ran[1:])  # all six views, or the image alone


def test_the_page_opens_on_the_shipped_runs_test_set_scores_with_no_wait(tmp_path, monkeypatch):
    """A newcomer with no runs of their own: the shipped run the page picks
    comes with its test-set scores, clean and corrupted, so the heat maps
    and the cost table are there at once, and no button asks them to wait."""
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    at = app("pages/tta.py")
    assert not at.exception and not at.error
    (shown,) = at.multiselect(key="tta_runs").value
    run = next(r for r in reference_runs() if r.run_id == shown)
    assert not any(b.key.startswith("tta_eval_") for b in at.button)
    maps = [fig for fig in figures(at) if "heatmap" in trace_types(fig)]
    clean, corrupted = maps[-2]["data"][0], maps[-1]["data"][0]  # after the samples' accuracy map
    shipped = analysis.cached(run, analysis.kept_moments(run)[-1][1], "tta_testset")
    assert values(clean["y"]) == shipped["strategies"] and values(corrupted["y"])[0] == "clean"
    assert any("passes per image" in t.value.columns for t in at.dataframe)
    assert any(c.value.startswith("Shipped with this reference run") for c in at.caption)
