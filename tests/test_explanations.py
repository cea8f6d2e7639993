"""The Attributions page's work (services/explanations.py): the gallery's filters, the grid
of maps and its colour scales, the deletion curves and the sanity checks. Cases whose
right answer is known."""

import numpy as np
import pytest
from helpers import random_pixels, tiny_loaded_model

from resexplorer.science.attribution import Attribution, DeletionCurve, Explanation, SanityCheck
from resexplorer.services import analysis, explanations


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
    loaded = tiny_loaded_model()
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
    loaded = tiny_loaded_model()
    image = random_pixels(1)[0]
    found = [Explanation("resnet-8", np.full(10, 0.1), 4, {}, {}, DeletionCurve([0.0, 1.0], [0.1, 0.1], 0.1))]
    steps = []
    checks = explanations.sanity_checks(
        [loaded], found, image, ["saliency", "gradcam"], "black", lambda f, t: steps.append(t)
    )
    assert [(name, c.method) for name, c in checks] == [("resnet-8", "saliency"), ("resnet-8", "gradcam")]
    assert all(len(c.similarity) == len(c.steps) == 5 for _, c in checks)  # classifier, 3 stages, stem
    assert steps == ["resnet-8: Saliency", "resnet-8: Grad-CAM"]


def test_the_image_key_changes_with_any_pixel():
    image = random_pixels(1)[0]
    changed = image.copy()
    changed[1, 5, 7] ^= 1
    assert explanations.image_key(image) == explanations.image_key(image.copy())
    assert explanations.image_key(changed) != explanations.image_key(image)
