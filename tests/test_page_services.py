"""The pages' work, done in the package where it can be tested: the
Attributions gallery's filter and grid of maps, the TTA page's answers and
score grids, the Inside page's lines from analysis results and recorded
probes, the Runs table. Cases whose right answer is known."""

import io
import os
import re
from datetime import timedelta, timezone
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from resexplorer.data.images import decode_upload, enlarged
from resexplorer.data.samples import (
    CIFAR10_CLASSES,
    cifar_sample_paths,
    class_in_name,
    is_cifar_sample,
    photo_paths,
    samples_by_name,
)
from resexplorer.data.sources import Normalizer, load_dataset
from resexplorer.nets.models import build_model
from resexplorer.runs.store import Run
from resexplorer.science.attribution import Attribution, DeletionCurve, Explanation, SanityCheck
from resexplorer.science.inference import LoadedModel
from resexplorer.science.tta import MERGES, STRATEGIES, TTAResult, predict, view_images
from resexplorer.services import analysis, explanations, inside_series, run_table, tta_report

NORMALIZE = Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


def _loaded(name="resnet-8") -> LoadedModel:
    torch.manual_seed(0)
    model = build_model(name).eval()
    return LoadedModel(name, model, NORMALIZE, [str(i) for i in range(10)], torch.device("cpu"), 3)


def _pixels(n=2, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


# --- images and samples ---------------------------------------------------------------------------


def test_enlarged_shows_each_pixel_as_a_block():
    image = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)  # [3, H, W]
    shown = enlarged(image, 3)
    assert shown.shape == (6, 6, 3) and shown.dtype == np.uint8
    assert (shown[:3, :3] == image[:, 0, 0]).all() and (shown[3:, 3:] == image[:, 1, 1]).all()
    assert (shown[:3, 3:] == image[:, 0, 1]).all()  # the block right of the first is the pixel right of it
    assert (enlarged(image) == image.transpose(1, 2, 0)).all()


def test_a_preview_too_thin_to_draw_is_said_so():
    assert decode_upload("square.png", _png(40, 40)).drawable_at(192)
    strip = decode_upload("strip.png", _png(4000, 4))  # its preview: 512 x 1 pixels
    assert strip.drawable_at(512) and not strip.drawable_at(192)


def test_sample_names_give_their_class():
    assert class_in_name("cat_03.jpg", CIFAR10_CLASSES) == "cat"
    assert class_in_name("cat-chelsea.png", CIFAR10_CLASSES) is None  # a photo: no class in its name
    assert class_in_name("cat_03.jpg", ["dog", "bird"]) is None  # a run trained on other classes
    cifar, photos = cifar_sample_paths(), photo_paths()
    assert all(is_cifar_sample(p) for p in cifar) and not any(is_cifar_sample(p) for p in photos)
    assert list(samples_by_name()) == [p.name for p in cifar + photos]
    assert list(samples_by_name(photos_first=True)) == [p.name for p in photos + cifar]


# --- attributions -----------------------------------------------------------------------------------


def _gallery() -> explanations.Gallery:
    labels = [0, 1, 2, 0, 1, 2]
    predictions = [[0, 1, 2, 1, 1, 0], [0, 2, 2, 0, 1, 0]]  # wrong: model 0 on #3 and #5, model 1 on #1 and #5
    return explanations.Gallery(
        np.zeros((6, 3, 32, 32), np.uint8), np.array(labels), [np.array(p) for p in predictions]
    )


def test_the_gallery_filters_by_class_and_by_one_model_wrong():
    gallery = _gallery()
    assert gallery.matching() == [0, 1, 2, 3, 4, 5]
    assert gallery.matching(wanted=0) == [0, 3]
    assert gallery.matching(one_wrong=True) == [1, 3]  # #5 is wrong for both: no disagreement to look at
    assert gallery.matching(wanted=0, one_wrong=True) == [3]
    assert gallery.matching(limit=2) == [0, 1]
    assert gallery.matching(wanted=1, one_wrong=True, limit=0) == []
    assert gallery.caption(1, ["a", "b", "c"], ["plain-8", "resnet-8"]) == "#1 b | plain-8: b · resnet-8: c"
    image, label = gallery.picked(3)
    assert image.shape == (3, 32, 32) and label == 0 and type(label) is int
    assert [t.shape for t in gallery.thumbnails([0, 4])] == [(32, 32, 3)] * 2


def test_one_models_gallery_filter_keeps_its_mistakes():
    gallery = explanations.Gallery(np.zeros((4, 3, 8, 8), np.uint8), np.array([0, 1, 1, 0]), [np.array([0, 0, 1, 1])])
    assert gallery.matching(one_wrong=True) == [1, 3]


def test_the_gallery_comes_from_the_pool_with_each_models_predictions(tiny_data):
    pool = analysis.ImagePool.from_dataset(tiny_data)
    images, labels = explanations.gallery_images(pool, 20)
    assert isinstance(images, np.ndarray) and images.shape == (20, 3, 32, 32) and images.dtype == np.uint8
    assert sorted(np.bincount(labels).tolist()) == [5, 5, 5, 5]  # class-balanced
    loaded = _loaded()
    predicted = explanations.predicted_classes(loaded, images)
    assert predicted.tolist() == loaded.probabilities(images).argmax(1).tolist()


def _explanation(model: str, strength: float, methods=("saliency",), size=4) -> Explanation:
    values = np.full((1, 3, size, size), strength)
    values[0, :, 0, 0] = -strength  # one pixel against the class
    return Explanation(
        model,
        np.array([0.1, 0.6, 0.3]),
        2,
        {m: Attribution(m, values, 0.25) for m in methods},
        {m: DeletionCurve([0.0, 0.5, 1.0], [0.9, 0.4, 0.1], 0.45) for m in methods},
        DeletionCurve([0.0, 0.5, 1.0], [0.9, 0.7, 0.3], 0.65),
    )


def test_the_grid_shares_a_scale_per_column_or_gives_each_map_its_own():
    image = np.full((3, 4, 4), 128, np.uint8)
    found = [_explanation("strong", 1.0), _explanation("weak", 0.01)]
    shared = explanations.attribution_grid(found, ["saliency"], image, signed=True, per_column=True, upscale=2)
    assert shared.captions == [["strong · Saliency"], ["weak · Saliency"]]
    assert shared.pictures[0][0].shape == (8, 8, 3)
    assert shared.faint == ["weak"]  # a hundred times weaker on the shared scale
    assert not np.array_equal(shared.pictures[0][0], shared.pictures[1][0])
    own = explanations.attribution_grid(found, ["saliency"], image, signed=True, per_column=False, upscale=2)
    assert np.array_equal(own.pictures[0][0], own.pictures[1][0])  # the same shape, each on its own scale
    assert np.array_equal(own.pictures[0][0], shared.pictures[0][0])  # the strongest sets the column's scale


def test_map_scale_ignores_the_most_extreme_percent():
    assert explanations.map_scale(np.arange(101.0)) == pytest.approx(99.0)
    assert explanations.map_scale([np.full((2, 2), -3.0), np.full((2, 2), 1.0)]) == pytest.approx(3.0)


def test_rows_curves_and_check_results_name_model_and_method():
    found = [_explanation("resnet-8", 1.0, methods=("saliency", "gradcam"))]
    assert explanations.top_rows(found, ["a", "b", "c"]) == [
        {"model": "resnet-8", "top 1": "b 60.0%", "top 2": "c 30.0%", "top 3": "a 10.0%", "explained class": "c"}
    ]
    (saliency, gradcam, random) = explanations.deletion_series(found, ["saliency", "gradcam"])
    assert saliency.label == "resnet-8 · Saliency" and saliency.x == [0.0, 50.0, 100.0]
    assert saliency.y == [0.9, 0.4, 0.1] and saliency.dash != gradcam.dash
    # the random-order baseline, drawn with every model's curves, in its own dash
    assert random.label == "resnet-8 · random order" and random.y == [0.9, 0.7, 0.3]
    assert random.dash not in (saliency.dash, gradcam.dash)
    areas = explanations.deletion_areas(found, ["saliency"])
    assert areas == [{"model": "resnet-8", "Saliency": 0.45, "random order": 0.65, "random order ± 2 SE": None}]
    assert explanations.seconds_per_map(found, ["saliency", "gradcam"]) == "resnet-8: Saliency 0.25, Grad-CAM 0.25"
    checks = [
        ("plain-8", SanityCheck("saliency", ["classifier", "+ stage 3"], [0.9, 0.7], True)),
        ("resnet-8", SanityCheck("gradcam", ["classifier", "+ stage 3"], [0.5, 0.1], False)),
    ]
    (first, second) = explanations.sanity_series(checks)
    assert first.label == "plain-8 · Saliency" and first.x == ["classifier", "+ stage 3"] and second.y == [0.5, 0.1]
    assert explanations.flagged(checks) == ["Saliency on plain-8"]


def test_sanity_checks_run_every_method_on_every_model():
    loaded = _loaded()
    image = _pixels(1)[0]
    found = [Explanation("resnet-8", np.full(10, 0.1), 4, {}, {}, DeletionCurve([0.0, 1.0], [0.1, 0.1], 0.1))]
    steps = []
    checks = explanations.sanity_checks(
        [loaded], found, image, ["saliency", "gradcam"], "black", lambda f, t: steps.append(t)
    )
    assert [(name, c.method) for name, c in checks] == [("resnet-8", "saliency"), ("resnet-8", "gradcam")]
    assert all(len(c.similarity) == len(c.steps) == 5 for _, c in checks)  # classifier, 3 stages, stem
    assert steps == ["resnet-8: Saliency", "resnet-8: Grad-CAM"]


def test_the_image_key_changes_with_any_pixel():
    image = _pixels(1)[0]
    changed = image.copy()
    changed[1, 5, 7] ^= 1
    assert explanations.image_key(image) == explanations.image_key(image.copy())
    assert explanations.image_key(changed) != explanations.image_key(image)


# --- test-time augmentation --------------------------------------------------------------------------


class _Counting(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.batches = net, []

    def forward(self, x):
        self.batches.append(len(x))
        return self.net(x)


def test_every_strategy_of_an_image_shares_its_views_and_agrees_with_predict():
    loaded = _loaded()
    counting = _Counting(loaded.model)
    image = _pixels(1)[0]
    answers = tta_report.image_answers(SimpleNamespace(model=counting, inputs=loaded.inputs), image)
    distinct = len({v.key for s in STRATEGIES.values() for v in s.views})
    # one pass, each distinct view once: not 27 views strategy by strategy; first, the same pass untimed, to warm up
    assert counting.batches == [distinct, distinct]
    assert list(answers) == list(STRATEGIES) and all(list(by_merge) == list(MERGES) for by_merge in answers.values())
    for strategy, by_merge in answers.items():
        for merge, result in by_merge.items():
            alone = predict(loaded.model, image[None], strategy, merge, loaded.inputs)
            assert np.allclose(result.probabilities, alone.probabilities, atol=1e-5), (strategy, merge)
            assert result.predictions.tolist() == alone.predictions.tolist()
            assert result.forward_passes == alone.forward_passes
            if STRATEGIES[strategy].unsure_below is None:
                assert result.forward_passes == len(STRATEGIES[strategy].views)
    ten, one = answers["10-crop"]["mean logits"].milliseconds, answers["none"]["mean logits"].milliseconds
    assert one > 0 and ten == pytest.approx(10 * one)  # shares of the one pass, by views


def test_view_probabilities_are_each_views_own_softmax():
    loaded = _loaded()
    result = predict(loaded.model, _pixels(2), "flip", "mean logits", loaded.inputs)
    expected = torch.softmax(torch.from_numpy(result.view_logits), dim=-1).numpy()
    assert result.view_probabilities.shape == (2, 2, 10)
    assert np.allclose(result.view_probabilities, expected, atol=1e-6)
    huge = TTAResult("none", "mean logits", None, None, np.array([[[1000.0, 0.0]]]), 1, 0.0)
    assert huge.view_probabilities.tolist() == [[[1.0, 0.0]]]  # no overflow


def test_the_view_gallery_shows_each_view_and_its_own_answer():
    image = np.arange(48, dtype=np.uint8).reshape(3, 4, 4)
    logits = np.array([[[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])  # identity says a, the mirror says c
    result = TTAResult("flip", "mean probs", None, None, logits, 2, 1.0)
    pictures, captions = tta_report.view_gallery(image, result, ["a", "b", "c"], factor=3)
    assert captions == ["identity: a 79%", "mirror: c 91%"]
    assert np.array_equal(pictures[0], enlarged(image, 3))
    assert np.array_equal(pictures[1], enlarged(np.ascontiguousarray(image[:, :, ::-1]), 3))
    assert (
        len(
            tta_report.view_gallery(image, TTAResult("10-crop", "", None, None, np.zeros((1, 10, 3)), 10, 1.0), "abc")[
                0
            ]
        )
        == 10
    )


def test_the_view_gallery_says_which_views_a_selective_strategy_did_not_run():
    image = np.arange(48, dtype=np.uint8).reshape(3, 4, 4)
    logits = np.full((1, 6, 3), np.nan)
    logits[0, 0] = [3.0, 0.0, 0.0]  # sure of a on the image alone: the other views were not run
    result = TTAResult("selective", "mean probs", None, None, logits, 1, 1.0)
    pictures, captions = tta_report.view_gallery(image, result, ["a", "b", "c"])
    assert len(pictures) == 6 and captions[0] == "identity: a 91%"
    assert captions[1:] == [f"{name}: not run" for name, _ in view_images(image[None], "selective")[1:]]


def test_the_answer_table_and_bars_read_every_strategy_and_merge():
    loaded = _loaded()
    answers = tta_report.image_answers(loaded, _pixels(1)[0])
    rows = tta_report.answer_rows(answers, loaded.classes, "mean probs")
    assert [r["strategy"] for r in rows] == list(STRATEGIES)
    assert list(rows[0]) == ["strategy", "passes", "ms", *MERGES]  # the cost first: never the part cut off
    assert [r["passes"] for r in rows][:6] == [1, 2, 6, 5, 10, 3] and rows[6]["passes"] in (1, 6)
    shown = answers["10-crop"]["mean probs"].milliseconds
    assert rows[4]["ms"] == round(shown, 1) and rows[4]["ms"] > 0  # one decimal
    top = int(answers["none"]["mean logits"].predictions[0])
    assert rows[0]["mean logits"] == f"{top} {100 * answers['none']['mean logits'].probabilities[0, top]:.0f}%"
    for row in rows:  # short cells: a class and a whole percent
        assert all(re.fullmatch(r"\S+ \d{1,3}%", row[merge]) for merge in MERGES), row
    bars = tta_report.merged_probabilities(answers, "max-confidence")
    assert list(bars) == list(STRATEGIES) and sum(bars["10-crop"]) == pytest.approx(1.0, abs=1e-5)
    assert bars["flip"] == answers["flip"]["max-confidence"].probabilities[0].tolist()


def test_accuracy_over_images_with_a_known_class():
    def answers(predicted: dict[str, int]):
        return {
            s: {m: SimpleNamespace(predictions=np.array([predicted.get(s, 0)])) for m in MERGES} for s in STRATEGIES
        }

    grid = tta_report.accuracy_on_known([answers({"none": 1}), answers({"none": 1, "flip": 1})], [1, 1])
    assert len(grid) == len(STRATEGIES) and all(len(row) == len(MERGES) for row in grid)
    by_strategy = dict(zip(STRATEGIES, grid))
    assert by_strategy["none"] == [100.0] * len(MERGES)
    assert by_strategy["flip"] == [50.0] * len(MERGES) and by_strategy["10-crop"] == [0.0] * len(MERGES)


def test_test_set_records_become_grids():
    strategies, merges = list(STRATEGIES), list(MERGES)
    clean = {
        "scoring": 2,
        "strategies": strategies,
        "merges": merges,
        "accuracy": {s: {m: (10 * i + j) / 100 for j, m in enumerate(merges)} for i, s in enumerate(strategies)},
        "views": {s: len(strategy.views) for s, strategy in STRATEGIES.items()},
        "passes_per_image": {**{s: float(len(t.views)) for s, t in STRATEGIES.items()}, "selective": 1.5},
        "ms_per_image": {s: 0.1234 * (i + 1) for i, s in enumerate(strategies)},
        "unsure_below": {"selective": 0.9},
        "n_images": 1000,
        "images": "cifar10",
    }
    grid, shown_merges, shown_strategies, costs = tta_report.clean_scores(clean, "mean probs")
    assert shown_merges == merges and shown_strategies == strategies
    assert grid == [[pytest.approx(10 * i + j) for j in range(len(merges))] for i in range(len(strategies))]
    assert costs[0] == {"strategy": "none", "accuracy %": 1.0, "passes per image": 1.0, "ms per image": 0.12}
    selective = strategies.index("selective")  # its accuracy against its average cost
    assert costs[selective] == {
        "strategy": "selective",
        "accuracy %": 61.0,
        "passes per image": 1.5,
        "ms per image": 0.86,
    }
    caption = tta_report.testset_caption(clean, "mean probs")
    assert caption.startswith("Accuracy (%) on 1,000 test images of cifar10.") and "(mean probs)" in caption
    assert "selective strategy ran its extra views on 10% of the images (top probability below 90%)" in caption
    assert tta_report.unscored(clean) == [] and tta_report.unscored_note(clean) == ""
    corrupted = {
        "scoring": 2,
        "strategies": ["none", "flip", "10-crop"],
        "accuracy": {
            "clean": {"none": {"mean probs": 0.5}, "flip": {"mean probs": 0.625}, "10-crop": {"mean probs": 0.5}},
            "blur 1": {"none": {"mean probs": 0.5}, "flip": {"mean probs": 0.375}, "10-crop": {"mean probs": 0.75}},
        },
        "n_images": 500,
    }
    grid, others, cases = tta_report.corruption_changes(corrupted, "mean probs")
    assert others == strategies[1:] and cases == ["clean", "blur 1"]
    flip, ten = others.index("flip"), others.index("10-crop")
    assert [[row[flip], row[ten]] for row in grid] == [[12.5, 0.0], [-12.5, 25.0]]  # points against no TTA
    assert all(v is None for row in grid for k, v in enumerate(row) if k not in (flip, ten))  # not in the record
    assert "(mean probs), on 500 test images" in tta_report.corruptions_caption(corrupted, "mean probs")


def test_an_older_test_set_record_shows_what_it_did_not_score_as_not_yet_scored():
    """A record scored before exact vote ties and the selective strategy:
    it has a geometric mean (gone), no selective row, and vote accuracies
    from the old tie-break."""
    old_strategies = ["none", "flip", "flip+translate", "5-crop", "10-crop", "multi-scale"]
    old_merges = ["mean logits", "mean probs", "geometric mean", "max-confidence", "majority vote"]
    clean = {
        "strategies": old_strategies,
        "merges": old_merges,
        "accuracy": {s: {m: 0.5 for m in old_merges} for s in old_strategies},
        "views": {s: len(STRATEGIES[s].views) for s in old_strategies},
        "ms_per_image": dict.fromkeys(old_strategies, 0.1),
        "n_images": 1000,
        "images": "cifar10",
    }
    grid, merges, strategies, costs = tta_report.clean_scores(clean, "majority vote")
    assert merges == list(MERGES) and strategies == list(STRATEGIES)
    rows = dict(zip(strategies, grid))
    vote = merges.index("majority vote")
    assert rows["selective"] == [None] * len(MERGES) and all(row[vote] is None for row in grid)
    assert rows["flip"][merges.index("mean probs")] == 50.0
    by_strategy = {row["strategy"]: row for row in costs}
    assert by_strategy["selective"] == {
        "strategy": "selective",
        "accuracy %": None,
        "passes per image": None,
        "ms per image": None,
    }
    assert by_strategy["10-crop"]["passes per image"] == 10 and by_strategy["10-crop"]["accuracy %"] is None
    assert tta_report.unscored(clean) == ["selective", "majority vote"]
    note = tta_report.unscored_note(clean)
    assert "not yet scored" in note and "selective" in note and "majority vote" in note
    corrupted = {
        "strategies": old_strategies,
        "accuracy": {"clean": {s: {m: 0.5 for m in old_merges} for s in old_strategies}},
        "n_images": 500,
    }
    grid, others, cases = tta_report.corruption_changes(corrupted, "majority vote")
    assert cases == ["clean"] and all(v is None for row in grid for v in row)
    grid, others, _ = tta_report.corruption_changes(corrupted, "mean probs")
    assert grid[0][others.index("selective")] is None and grid[0][others.index("flip")] == 0.0


def test_the_real_test_set_records_fit_the_grids():
    from resexplorer.science.tta_eval import evaluate_corruptions, evaluate_strategies

    loaded, images = _loaded(), torch.from_numpy(_pixels(6))
    labels = torch.arange(6) % 10
    clean = {**evaluate_strategies(loaded.model, images, labels, loaded.inputs), "n_images": 6, "images": "random"}
    grid, merges, strategies, costs = tta_report.clean_scores(clean, "mean logits")
    assert (len(grid), len(grid[0])) == (len(STRATEGIES), len(MERGES)) and len(costs) == len(STRATEGIES)
    assert all(v is not None for row in grid for v in row) and tta_report.unscored(clean) == []
    assert all(row["passes per image"] == len(STRATEGIES[row["strategy"]].views) for row in costs)  # all unsure
    corrupted = {**evaluate_corruptions(loaded.model, images, labels, loaded.inputs), "n_images": 6}
    grid, others, cases = tta_report.corruption_changes(corrupted, "mean logits")
    assert cases[0] == "clean" and len(cases) == 16 and len(others) == len(STRATEGIES) - 1


# --- inside the nets --------------------------------------------------------------------------------

RESULT = {
    "response_std": [0.5, 2.0, 1.0],
    "layer_names": ["stem", "s1.b1.conv1", "s1.b1.conv2"],
    "branch_ratio": [0.2, 0.4],
    "block_names": ["s1.b1", "s2.b1"],
    "weight_grad_norm": [1.0, 2.0, 3.0],
    "input_grad_norm": [4.0, 5.0],
    "error_without": [0.1, 0.5],
    "baseline_error": 0.08,
    "ks": [1, 2],
    "mean_error": [0.2, 0.3],
    "draws": 5,
    "axes": [[-1.0, 0.0, 1.0]],
    "loss": [2.0, 1.0, 2.0],
    "n_images": 1000,
    "settings": {"split": "test"},
    "images": "cifar10",
}
RESNET = inside_series.Checkpoint(None, "resnet-8", "resnet-8 @ end (epoch 2)", 2, "resnet")
PLAIN = inside_series.Checkpoint(None, "plain-8", "plain-8 @ end (epoch 2)", 2, "plain")


def test_lines_from_analysis_results():
    (line,) = inside_series.response_lines([(RESNET, RESULT)])
    assert (line.label, line.model, line.x, line.y) == (
        "resnet-8 @ end (epoch 2)",
        "resnet-8",
        [1, 2, 3],
        [0.5, 2.0, 1.0],
    )
    assert line.hover == RESULT["layer_names"]
    (ranked,) = inside_series.response_lines([(RESNET, RESULT)], ranked=True)
    assert ranked.y == [2.0, 1.0, 0.5] and ranked.hover is None  # sorted: no layer to name
    (ratios,) = inside_series.ratio_lines([(RESNET, RESULT)])
    assert ratios.x == [1, 2] and ratios.y == [0.2, 0.4] and ratios.hover == RESULT["block_names"]
    (weights,) = inside_series.gradient_lines([(RESNET, RESULT)])
    (inputs,) = inside_series.gradient_lines([(RESNET, RESULT)], at_inputs=True)
    assert weights.y == [1.0, 2.0, 3.0] and inputs.y == pytest.approx([4 / 128, 5 / 128])  # 16x32x32 values each
    assert [h.split(",")[0] for h in inputs.hover] == RESULT["block_names"]
    deleted, intact = inside_series.lesion_single_lines([(RESNET, RESULT)])
    assert deleted.y == pytest.approx([10.0, 50.0]) and deleted.hover == RESULT["block_names"]
    assert intact.label.endswith(": nothing deleted") and intact.x == [1, 2] and intact.y == pytest.approx([8.0, 8.0])
    assert intact.dash == "dot" and deleted.dash == "solid"
    (randomly,) = inside_series.lesion_random_lines([(RESNET, RESULT)])
    assert randomly.x == [1, 2] and randomly.y == pytest.approx([20.0, 30.0])
    assert inside_series.lesion_draws([(RESNET, RESULT)]) == 5 and inside_series.lesion_draws([]) == 3
    (along,) = inside_series.slice_lines([(RESNET, RESULT)])
    assert along.x == [-1.0, 0.0, 1.0] and along.y == [2.0, 1.0, 2.0]
    plane = {"axes": [[-1.0, 1.0], [-1.0, 1.0]], "loss": [[1.0, 2.0], [3.0, 4.0]]}
    assert inside_series.plane_panels([(RESNET, plane)]) == [
        ("resnet-8 (epoch 2)", [-1.0, 1.0], [[1.0, 2.0], [3.0, 4.0]])
    ]
    assert inside_series.images_seen([RESULT, RESULT]) == "1,000 test images of cifar10"
    assert inside_series.images_seen([]) == ""
    assert not inside_series.any_plain([RESNET]) and inside_series.any_plain([RESNET, PLAIN])


def test_checkpoints_and_recorded_probes_of_trained_runs(two_runs, tmp_path):
    runs = [two_runs["plain-8"], two_runs["resnet-8"]]
    found, missing = inside_series.checkpoints_at(runs, "end")
    assert [(c.label, c.epoch, c.arch) for c in found] == [
        ("plain-8 @ end (epoch 2)", 2, "plain"),
        ("resnet-8 @ end (epoch 2)", 2, "resnet"),
    ]
    assert not missing
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "config.json").write_text(runs[0].config_path.read_text())
    _, missing = inside_series.checkpoints_at([Run(tmp_path / "untrained")], "end")
    assert missing == ["plain-8 (untrained)"]

    histories = [inside_series.probe_history(c) for c in found]
    assert [h.epochs for h in histories] == [[1, 2], [1, 2]]
    assert all(len(ratios) == 3 for h in histories for ratios in h.by_stage)  # three stages of one block each
    last = runs[1].metrics("epoch")[-1]["probes"]
    assert histories[1].at(2) == last["branch_ratio"] and histories[1].at(5) is None
    stages = inside_series.stage_lines(histories)
    assert [s.label for s in stages[:3]] == ["plain-8 stage 1", "plain-8 stage 2", "plain-8 stage 3"]
    assert [s.dash for s in stages[:3]] == ["solid", "dash", "dot"] and stages[5].y[-1] == last[
        "branch_ratio_by_stage"
    ][2]
    assert inside_series.last_recorded_epoch(histories) == 2 and inside_series.last_recorded_epoch([]) == 1
    assert [s.label for s in inside_series.block_lines_at(histories, 1)] == ["plain-8, epoch 1", "resnet-8, epoch 1"]
    assert inside_series.block_lines_at(histories, 7) == []


def test_the_probe_history_reads_each_epoch_record_and_skips_those_without_probes():
    def probes(epoch: int) -> dict:
        return {
            "branch_ratio_by_stage": [epoch, 2 * epoch, 3 * epoch],
            "branch_ratio": list(range(epoch, epoch + 6)),
        }

    records = [
        {"epoch": 1},
        {"epoch": 2, "probes": probes(2)},
        {"epoch": 3, "probes": {}},
        {"epoch": 4, "probes": probes(4)},
    ]
    run = SimpleNamespace(metrics=lambda kind: records if kind == "epoch" else pytest.fail(kind))
    history = inside_series.probe_history(inside_series.Checkpoint(run, "resnet-14", "resnet-14", 4))
    assert history.epochs == [2, 4] and history.at(4) == [4, 5, 6, 7, 8, 9] and history.at(3) is None
    stages = inside_series.stage_lines([history])
    assert [(s.label, s.x, s.y) for s in stages] == [
        ("resnet-14 stage 1", [2, 4], [2, 4]),
        ("resnet-14 stage 2", [2, 4], [4, 8]),
        ("resnet-14 stage 3", [2, 4], [6, 12]),
    ]
    (blocks,) = inside_series.block_lines_at([history], 2)
    assert blocks.x == [1, 2, 3, 4, 5, 6] and blocks.y == [2, 3, 4, 5, 6, 7]
    quiet = SimpleNamespace(metrics=lambda kind: records[:1])
    silent = inside_series.probe_history(inside_series.Checkpoint(quiet, "resnet-8", "resnet-8", 1))
    assert silent.epochs == [] and inside_series.stage_lines([silent]) == []
    assert not history.legacy


def test_the_gradient_growth_says_first_against_last_block_per_value():
    plain = inside_series.Checkpoint(None, "plain-56", "plain-56 @ initialisation", 0, "plain")
    dead = inside_series.Checkpoint(None, "resnet-8", "resnet-8 @ end", 2)
    results = [(plain, {"input_grad_norm": [8800.0] + [40.0] * 25 + [1.0]}), (dead, {"input_grad_norm": [1.0, 0.5, 0]})]
    assert inside_series.gradient_growth(results) == (
        "plain-56 @ initialisation: 4,400×; resnet-8 @ end: no gradient at the last block"
    )


@pytest.mark.parametrize(
    "model, kept",
    [
        ("resnet-14", [0, 1, 3, 5]),  # the first block of stages 2 and 3 changes the shape
        ("plain-14", [0, 1, 3, 5]),  # (the old records had None there already)
        ("resnet-14-B", [0, 1, 3, 5]),
        ("resnet-14-C", []),  # projections everywhere: no block's shortcut is x
    ],
)
def test_older_records_keep_only_the_blocks_where_both_measures_agree(model, kept):
    """Runs recorded before the branch ratio kept ||F(x)|| / ||x||; that equals
    ||F(x)|| / ||shortcut(x)|| where the shortcut is the identity, and only
    those blocks are shown (the stage means are taken over them)."""
    old = [0.1, 0.2, 0.5, 0.3, 0.6, 0.4]  # 6 blocks: two per stage
    records = [{"epoch": 1, "probes": {"residual_ratio": old, "residual_ratio_by_stage": [9, 9, 9]}}]
    run = SimpleNamespace(metrics=lambda kind: records)
    history = inside_series.probe_history(inside_series.Checkpoint(run, model, model, 1))
    assert history.legacy and history.epochs == [1]
    assert history.at(1) == [v if i in kept else None for i, v in enumerate(old)]
    means = [
        sum(old[i] for i in kept if i // 2 == stage) / max(1, sum(i // 2 == stage for i in kept)) for stage in range(3)
    ]
    assert history.by_stage[0] == [m if any(i // 2 == s for i in kept) else None for s, m in enumerate(means)]


def test_the_lines_read_real_analysis_results(two_runs):
    run = two_runs["plain-8"]
    pool = analysis.ImagePool.from_dataset(load_dataset(os.environ["RESEXPLORER_DATA"]))  # the runs' image folder
    (checkpoint,), _ = inside_series.checkpoints_at([run], "end")
    settings = {
        "inside": {"n": 12},
        "gradients": {"n": 12},
        "lesion_single": {"n": 12},
        "landscape_1d": {"n": 12, "points": 3},
    }
    results = {kind: analysis.compute(run, 2, kind, pool, device="cpu", **s) for kind, s in settings.items()}
    (responses,) = inside_series.response_lines([(checkpoint, results["inside"])])
    assert len(responses.y) == len(responses.hover) > 0
    (ratios,) = inside_series.ratio_lines([(checkpoint, results["inside"])])
    assert len(ratios.y) == 3  # plain-8's three blocks
    assert len(inside_series.gradient_lines([(checkpoint, results["gradients"])], at_inputs=True)[0].y) == 3
    deleted, intact = inside_series.lesion_single_lines([(checkpoint, results["lesion_single"])])
    assert len(deleted.y) == 3 and intact.y[0] == pytest.approx(100 * results["lesion_single"]["baseline_error"])
    assert len(inside_series.slice_lines([(checkpoint, results["landscape_1d"])])[0].y) == 3
    assert inside_series.images_seen([results["inside"]]) == f"12 test images of {pool.name}"


# --- the runs table ---------------------------------------------------------------------------------


def test_a_row_per_run_and_a_message_per_unreadable_one(two_runs, tmp_path):
    plain, residual = two_runs["plain-8"], two_runs["resnet-8"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    rows, problems = run_table.run_rows([plain, residual, Run(tmp_path / "broken")], shipped={plain.run_id})
    assert [r["run"] for r in rows] == [plain.run_id, residual.run_id]
    assert [r["where"] for r in rows] == ["shipped", "yours"] and rows[0]["epochs"] == "2/2"
    summary = residual.summary()
    assert rows[1]["final test error %"] == round(100 * summary["final_test_error"], 2)
    assert rows[1]["best test error %"] == round(100 * summary["best_test_error"], 2)
    assert len(problems) == 1 and problems[0].startswith("broken: ")
    assert run_table.curve_label(residual) == f"resnet-8 ({residual.run_id[-6:]})"


def test_the_runs_table_leads_with_model_time_and_errors_and_ends_with_the_id(two_runs):
    residual = two_runs["resnet-8"]
    (row,), _ = run_table.run_rows([residual], shipped=())
    assert tuple(row) == run_table.COLUMN_NAMES
    assert run_table.COLUMN_NAMES[:5] == (
        "model",
        "when",
        "final test error %",
        "final train error %",
        "best test error %",
    )
    assert run_table.COLUMN_NAMES[-1] == "run" and row["run"] == residual.run_id
    assert row["model"] == "resnet-8" and row["when"] == run_table.when(residual.config()["created"])
    errors = [column.name for column in run_table.RUN_COLUMNS if column.percent]
    assert errors == [name for name in run_table.COLUMN_NAMES if name.endswith("error %")]
    assert all(isinstance(row[name], float) for name in errors)


def test_when_a_run_was_made_reads_as_date_and_minute_in_the_zone_asked():
    created = "2026-11-29T13:05:42+00:00"  # as a run's config keeps it
    assert run_table.when(created, timezone.utc) == "2026-11-29 13:05"
    assert run_table.when(created, timezone(timedelta(hours=-14))) == "2026-11-28 23:05"
    assert run_table.when("2026-11-29T13:05:42") == "2026-11-29 13:05"  # no zone: taken as it is
    assert run_table.when(None) == "" and run_table.when("last week") == "last week"
    # the text sorts as the times do, so the table sorts by it
    times = ["2026-11-29T09:00:00+00:00", "2026-01-02T23:59:00+00:00", "2025-12-31T10:00:00+00:00"]
    assert sorted(run_table.when(t, timezone.utc) for t in times) == [
        run_table.when(t, timezone.utc) for t in sorted(times)
    ]


def test_ticked_rows_name_runs_by_their_place_in_the_rows_given_whatever_the_sort():
    row_ids = ["run-a", "run-b", "run-c", "run-d"]  # the rows in the order the table was given them
    # a user who sorted the table and ticked its top rows still sends these rows' places in row_ids
    assert run_table.ticked_runs(row_ids, [3, 1]) == ["run-b", "run-d"]
    assert run_table.ticked_runs(row_ids, []) == []
    assert run_table.ticked_runs(row_ids, [1, 1, 7, -1]) == ["run-b"]  # 7: a row gone since; -1 names none


def test_ticks_carried_to_changed_rows_follow_the_runs_not_the_places():
    drawn = ["mine-1", "mine-2", "shipped-1", "shipped-2"]
    ticked = run_table.ticked_runs(drawn, [1, 2])
    now = ["mine-0", "mine-1", "shipped-1", "shipped-2"]  # mine-2 deleted, mine-0 made since the table was drawn
    assert run_table.positions_of(ticked, now) == [2]
    assert run_table.ticked_runs(now, run_table.positions_of(ticked, now)) == ["shipped-1"]
    assert run_table.positions_of(["mine-2"], now) == []


def test_which_runs_resume_and_how_far_a_group_has_trained(two_runs):
    plain, residual = two_runs["plain-8"], two_runs["resnet-8"]
    plain.set_status("interrupted")
    assert run_table.resumable([plain, residual]) == [plain]
    assert run_table.group_progress([plain, residual]) == (2, 2)
    assert run_table.group_progress([]) == (0, 0)
    plain.truncate_metrics(after_step=0)  # a run that has completed no epoch yet
    assert run_table.epochs_reached(plain) == 0 and run_table.group_progress([plain, residual]) == (0, 2)


def test_every_analysis_is_one_row_of_one_table_with_a_title_settings_and_a_function():
    for name, kind in analysis.KINDS.items():
        assert kind.title and callable(kind.run), name
        assert kind.defaults["split"] in ("train", "test") and kind.defaults["n"] > 0, name
        assert kind.precompute in ("", analysis.EVERY_MOMENT, analysis.AT_END), name
