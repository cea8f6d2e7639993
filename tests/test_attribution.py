"""Attributions: shapes, IG completeness, DeepLift everywhere, faithfulness
measures on a model whose right answer is known."""

import numpy as np
import pytest
import torch
from torch import nn

from resexplorer.nets.config import ModelConfig
from resexplorer.nets.models import build_model
from resexplorer.science.attribution import (
    METHODS,
    Attribution,
    attribute,
    baseline_for,
    blurred,
    deletion_curve,
    deletion_ranking,
    explain,
    overlay,
    random_deletion_curve,
    randomised_cascade,
    rank_correlation,
    sanity_check,
)


def _model(name, seed=0):
    torch.manual_seed(seed)
    model = build_model(name).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():  # trained-like BN statistics keep logits moderate
        if isinstance(module, nn.BatchNorm2d):
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) * 4 + 4)
    return model


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_finite_maps_of_the_input_shape(method):
    model, images = _model("resnet-8"), torch.randn(2, 3, 32, 32)
    result = attribute(model, images, [1, 4], method)
    assert result.values.shape == (2, 3, 32, 32) and np.isfinite(result.values).all()
    assert result.pixel_map().shape == (2, 32, 32) and (result.pixel_map(signed=False) >= 0).all()
    assert np.abs(result.values).sum() > 0


@pytest.mark.parametrize("baseline", ["black", "blurred", "mean"])
def test_integrated_gradients_is_complete(baseline):
    """Sum of attributions = logit(x) - logit(baseline) (Sundararajan et al.)
    within 2% at 128 steps (the app's 50 steps trade some of this for speed)."""
    from resexplorer.science import attribution

    model, image = _model("resnet-14"), torch.randn(1, 3, 32, 32)
    black = torch.full((1, 3, 1, 1), -1.8)
    attribution.IG_STEPS, saved = 128, attribution.IG_STEPS
    try:
        result = attribute(model, image, 3, "integrated_gradients", baseline, black)
    finally:
        attribution.IG_STEPS = saved
    reference = baseline_for(image, baseline, black)
    with torch.no_grad():
        gap = float(model(image)[0, 3] - model(reference)[0, 3])
    assert result.values.sum() == pytest.approx(gap, rel=0.02, abs=0.02)


@pytest.mark.parametrize("name", ["plain-14", "resnet-14", "resnet-14-B", "resnet-14-C", "resnet-14-zero"])
def test_deeplift_runs_on_plain_and_every_shortcut_option(name):
    model = _model(ModelConfig.from_name(name))
    image = torch.randn(1, 3, 32, 32)
    result = attribute(model, image, 0, "deeplift", "mean")
    assert np.isfinite(result.values).all() and np.abs(result.values).sum() > 0
    with torch.no_grad():  # DeepLift's rescale rule is complete too: sum = f(x) - f(baseline)
        gap = float(model(image)[0, 0] - model(torch.zeros_like(image))[0, 0])
    assert result.values.sum() == pytest.approx(gap, rel=1e-3, abs=1e-3)


CHECKER = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1  # [8, 8] of -1 and 1


class _CornerDetector(nn.Module):
    """Class 0's logit is how much the top-left 8x8 corner shows a
    checkerboard; class 1's is a constant. The right map is that corner.
    A blur removes the checkerboard, so a blurred fill deletes the evidence
    (a detector of mere brightness would ignore a blurred fill)."""

    def forward(self, x):
        corner = (x[:, :, :8, :8] * CHECKER).mean(dim=(1, 2, 3)) * 20
        return torch.stack([corner, torch.zeros_like(corner)], dim=1)


def _checkered_image() -> torch.Tensor:
    return CHECKER.repeat(4, 4).expand(3, 32, 32) + 0.1 * torch.randn(
        3, 32, 32, generator=torch.Generator().manual_seed(0)
    )


def test_deletion_area_is_lower_for_the_right_map_than_for_a_random_one():
    model, image = _CornerDetector(), _checkered_image()  # the checkerboard: class 0 wins
    right = np.zeros((32, 32))
    right[:8, :8] = 1 + np.random.default_rng(0).random((8, 8))
    wrong = np.random.default_rng(1).random((32, 32))
    good, bad = deletion_curve(model, image, 0, right), deletion_curve(model, image, 0, wrong)
    assert good.probability[0] == pytest.approx(bad.probability[0]) and good.fractions[-1] == 1.0
    assert good.area < bad.area - 0.2
    # and a method finds it: saliency's map is the corner
    found = attribute(model, image[None], 0, "saliency")
    assert deletion_curve(model, image, 0, deletion_ranking(found)[0]).area == pytest.approx(good.area, abs=0.02)


def test_deleted_pixels_take_the_blurred_images_values():
    """One fill for every curve: the pixel of a heavily blurred copy of the
    image, so no grey squares the net never saw in training."""
    model, image = _CornerDetector(), _checkered_image()
    curve = deletion_curve(model, image, 0, np.random.default_rng(2).random((32, 32)))
    with torch.no_grad():
        everything_deleted = torch.softmax(model(blurred(image[None])), 1)[0, 0]
    assert curve.probability[-1] == pytest.approx(float(everything_deleted), abs=1e-6)


def test_saliency_and_smoothgrad_rank_pixels_by_magnitude_the_others_by_sign():
    """A gradient's sign is only a direction of sensitivity: a strongly
    negative saliency pixel matters as much as a positive one. IG, DeepLift,
    Occlusion and Grad-CAM rank positive evidence first."""
    values = np.zeros((1, 3, 32, 32), dtype=np.float32)
    values[0, :, 0, 0], values[0, :, 0, 1] = -5.0, 1.0
    for method in ("saliency", "smoothgrad"):
        ranking = deletion_ranking(Attribution(method, values, 0.0))[0]
        assert ranking[0, 0] > ranking[0, 1] > ranking[5, 5]
    ranking = deletion_ranking(Attribution("integrated_gradients", values, 0.0))[0]
    assert ranking[0, 1] > ranking[5, 5] > ranking[0, 0]


def test_a_random_order_curve_is_the_baseline_every_map_must_beat():
    model, image = _CornerDetector(), _checkered_image()
    baseline = random_deletion_curve(model, image, 0, seed=0)
    assert baseline == random_deletion_curve(model, image, 0, seed=0)  # seeded: the same curve on every rerun
    right = np.zeros((32, 32))
    right[:8, :8] = 1
    assert deletion_curve(model, image, 0, right).area < baseline.area - 0.2
    assert baseline.fractions == deletion_curve(model, image, 0, right).fractions


def test_rank_correlation():
    a = np.arange(16.0).reshape(4, 4)
    assert rank_correlation(a, a * 3 + 1) == pytest.approx(1.0) and rank_correlation(a, -a) == pytest.approx(-1.0)


def test_rank_correlation_gives_ties_their_average_rank():
    """Spearman's rho with average ranks: ties are not ordered by position
    (mostly-zero Grad-CAM maps would look alike for that alone)."""
    # average ranks [1, 2.5, 2.5, 4] and [1, 4, 2.5, 2.5]: rho = 2.25 / 4.5
    assert rank_correlation(np.array([1.0, 2, 2, 3]), np.array([1.0, 3, 2, 2])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 500).astype(float), rng.integers(0, 4, 500).astype(float)  # many ties
    ranks = [np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x]) for x in (a, b)]
    assert rank_correlation(a, b) == pytest.approx(np.corrcoef(*ranks)[0, 1])


def test_a_constant_map_has_no_rank_correlation():
    """A map that is the same everywhere (an all-zero Grad-CAM) ranks
    nothing: its correlation is undefined, not high, and never flags."""
    assert rank_correlation(np.zeros((4, 4)), np.arange(16.0).reshape(4, 4)) is None
    model, image = _model("resnet-8"), torch.randn(3, 32, 32)
    from resexplorer.science import attribution

    original = attribution._attribute
    attribution._attribute = lambda model, images, target, method, baseline: torch.zeros_like(images)
    try:
        check = sanity_check(model, image, 2, "gradcam")
    finally:
        attribution._attribute = original
    assert check.similarity == [None] * 5 and not check.flagged


def test_randomised_layers_start_from_fresh_batchnorm_statistics():
    """Randomised weights with the trained running statistics blow the
    logits up; the randomised layers' BN statistics are reset (mean 0,
    variance 1, as a freshly built net has), so the check compares the maps
    of a working random net."""
    model = _model("resnet-8")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # trained deep layers: small variances, shifted means
            module.running_var.fill_(1e-3)
            module.running_mean.fill_(0.5)
    *_, (name, randomised) = randomised_cascade(model, seed=0)
    assert name == "stem"
    for module in randomised.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
    with torch.no_grad():
        assert float(randomised(torch.randn(8, 3, 32, 32)).std()) < 20
    assert float(model.bn1.running_var[0]) == pytest.approx(1e-3)  # the model itself is untouched


def test_sanity_check_randomises_from_the_top_and_flags_a_map_that_ignores_the_model():
    model, image = _model("resnet-8"), torch.randn(3, 32, 32)
    check = sanity_check(model, image, 2, "saliency")
    assert check.steps == ["classifier", "+ stage 3", "+ stage 2", "+ stage 1", "+ stem"]
    assert len(check.similarity) == 5 and all(-1 <= s <= 1 for s in check.similarity)
    # a "method" that returns the input itself does not depend on the weights: flagged
    from resexplorer.science import attribution

    original = attribution._attribute
    attribution._attribute = lambda model, images, target, method, baseline: images.abs()
    try:
        edge = sanity_check(model, image, 2, "saliency")
    finally:
        attribution._attribute = original
    assert edge.flagged and edge.similarity == pytest.approx([1.0] * 5)


def test_explain_uses_each_models_prediction_or_the_asked_class():
    from resexplorer.data.sources import Normalizer
    from resexplorer.science.inference import LoadedModel

    loaded = LoadedModel(
        "resnet-8",
        _model("resnet-8"),
        Normalizer((0.5,) * 3, (0.25,) * 3),
        [str(i) for i in range(10)],
        torch.device("cpu"),
        0,
    )
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    ex = explain(loaded, image, ["saliency", "gradcam"])
    assert ex.target == int(ex.probabilities.argmax()) and set(ex.attributions) == {"saliency", "gradcam"}
    assert ex.probabilities.sum() == pytest.approx(1.0, abs=1e-5) and 0 <= ex.deletion["saliency"].area <= 1
    assert 0 <= ex.random_deletion.area <= 1 and ex.random_deletion.fractions == ex.deletion["saliency"].fractions
    assert explain(loaded, image, ["saliency"], which_class=7).target == 7
    assert explain(loaded, image, ["saliency"], which_class="true", true_label=4).target == 4


def test_overlay_colours_follow_the_sign_and_share_a_scale():
    image = np.full((3, 2, 2), 128, dtype=np.uint8)
    pixel_map = np.array([[1.0, -1.0], [0.0, 5.0]])
    out = overlay(image, pixel_map, scale=1.0, signed=True, upscale=1)
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] > out[0, 0, 2] and out[0, 1, 2] > out[0, 1, 0]  # red for, blue against
    assert (out[1, 1] == out[0, 0]).all()  # clipped at the scale
