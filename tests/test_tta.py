"""TTA: views have the documented geometry, merges match hand computations,
and strategies that should change nothing change nothing."""

import time

import numpy as np
import pytest
import torch
from torch import nn

from resexplorer.data.sources import Normalizer
from resexplorer.nets.models import build_model
from resexplorer.science.tta import (
    MERGES,
    STRATEGIES,
    Strategy,
    View,
    predict,
    view_images,
    view_logits,
)
from resexplorer.science.tta_eval import (
    CORRUPTIONS,
    corrupt,
    evaluate_corruptions,
    evaluate_strategies,
)


def _model():
    torch.manual_seed(0)
    return build_model("resnet-8").eval()


def _pixels(n=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))


NORMALIZE = Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


@pytest.mark.parametrize("merge", ["mean logits", "mean probs", "max-confidence", "majority vote"])
def test_identity_view_equals_a_plain_forward_pass(merge):
    model, images = _model(), _pixels()
    result = predict(model, images, "none", merge, NORMALIZE)
    with torch.inference_mode():
        plain = model(NORMALIZE(images))
    assert torch.equal(torch.from_numpy(result.view_logits[:, 0]), plain)
    softmax = torch.softmax(plain, 1).numpy()
    if merge in ("mean logits", "mean probs", "max-confidence"):
        assert np.array_equal(result.probabilities, softmax)
    assert np.array_equal(result.predictions, plain.argmax(1).numpy()) and result.forward_passes == 3


class _FlipSymmetric(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) + self.net(x.flip(-1))


@pytest.mark.parametrize("merge", list(MERGES))
def test_flip_tta_of_a_flip_symmetric_model_equals_no_tta(merge):
    model, images = _FlipSymmetric(_model()), _pixels()
    flipped = predict(model, images, "flip", merge, NORMALIZE)
    alone = predict(model, images, "none", merge, NORMALIZE)
    assert np.allclose(flipped.probabilities, alone.probabilities, atol=1e-5)
    assert flipped.forward_passes == 2 * alone.forward_passes


def _coordinates():
    """An image whose pixels encode their coordinates: channel 0 = row + 1,
    channel 1 = column + 1 (0 marks padding), channel 2 = 7."""
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    return torch.stack([rows + 1, cols + 1, torch.full((32, 32), 7.0)])[None]  # [1, 3, 32, 32]


def test_ten_crop_geometry_is_as_documented():
    views = dict(view_images(_coordinates(), "10-crop"))
    corners = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
    assert list(views) == corners + [f"mirrored, {c}" for c in corners]
    top_left = views["top-left"][0]
    assert top_left[0, 4, 4] == 1 and top_left[1, 4, 4] == 1  # original (0, 0) moved 4 down and right
    assert (top_left[:, :4, :] == 0).all() and (top_left[:, :, :4] == 0).all()  # zero padding above and left
    assert top_left[0, 31, 31] == 28 and top_left[1, 31, 31] == 28  # original row/col 27
    bottom_right = views["bottom-right"][0]
    assert (
        bottom_right[0, 0, 0] == 5 and bottom_right[1, 0, 0] == 5 and bottom_right[0, 27, 27] == 32
    )  # rows/cols 4..35
    assert np.array_equal(views["centre"][0], _coordinates()[0].numpy())
    assert np.array_equal(
        views["mirrored, top-left"][0], views["top-right"][0][:, :, ::-1]
    )  # crops of the mirrored image
    assert np.array_equal(views["mirrored, centre"][0], views["centre"][0][:, :, ::-1])
    top_right = views["top-right"][0]
    assert (
        top_right[1, 4, 0] == 5 and top_right[1, 4, 27] == 32 and (top_right[:, :, 28:] == 0).all()
    )  # columns 4..31, then padding


def test_translations_and_scales_are_as_documented():
    views = dict(view_images(_coordinates(), "flip+translate"))
    assert views["shift ↘"][0][0, 1, 1] == 1 and views["shift ↘"][0][0, 0, 5] == 2  # moved down 1; row 0 reflects row 1
    assert (
        views["shift ↖"][0][0, 0, 0] == 2 and views["shift ↖"][0][0, 31, 0] == 31
    )  # moved up 1; last row reflects row 30
    assert [v.weight for v in STRATEGIES["flip+translate"].views] == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    scales = dict(view_images(_coordinates(), "multi-scale"))
    span = {name: int(v[0][0, 24, 16]) - int(v[0][0, 8, 16]) for name, v in scales.items()}  # rows 8 to 24 show ...
    assert span == {"identity": 16, "zoom in": 14, "zoom out": 18}  # ... 16 rows, 16 x 28/32, 16 x 36/32


def test_merges_agree_with_hand_computations():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]])  # [B=1, V=3, C=3]
    w = [0.5, 0.25, 0.25]
    p = np.exp(logits[0].numpy()) / np.exp(logits[0].numpy()).sum(1, keepdims=True)
    mean_logits = np.array([1.0, 0.5, 0.0])
    expected = {
        "mean logits": np.exp(mean_logits) / np.exp(mean_logits).sum(),
        "mean probs": 0.5 * p[0] + 0.25 * p[1] + 0.25 * p[2],
        "max-confidence": p[0],  # 0.787 beats 0.576
        "majority vote": np.array([0.5, 0.5, 0.0]),
    }
    for name, merge in MERGES.items():
        assert merge(logits, w).probabilities[0].numpy() == pytest.approx(expected[name], abs=1e-5), name
    geometric = p[0] ** 0.5 * p[1] ** 0.25 * p[2] ** 0.25  # of the probabilities, renormalised: the mean of logits
    assert expected["mean logits"] == pytest.approx(geometric / geometric.sum(), abs=1e-7)
    # the vote's tie goes to the class with the higher mean probability
    assert int(MERGES["majority vote"](logits, w).predictions[0]) == int(np.argmax(expected["mean probs"]))


def test_all_views_of_a_chunk_run_as_one_batch():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(len(x))
            return torch.zeros(len(x), 10)

    view_logits(Counting(), _pixels(5), STRATEGIES["10-crop"], NORMALIZE, chunk=4)
    assert calls == [40, 10]


def test_corruptions_keep_shape_and_change_pixels():
    images = _pixels(4)
    for kind, levels in CORRUPTIONS.items():
        for level in levels:
            out = corrupt(images, kind, level)
            assert out.shape == images.shape and out.dtype == torch.uint8 and not torch.equal(out, images), (
                kind,
                level,
            )


def test_test_set_evaluations_report_every_strategy_and_merge():
    model, images = _model(), _pixels(12)
    labels = torch.arange(12) % 10
    report = evaluate_strategies(model, images, labels, NORMALIZE, chunk=5)
    assert set(report["accuracy"]) == set(STRATEGIES) and set(report["accuracy"]["none"]) == set(MERGES)
    with torch.inference_mode():
        plain = float((model(NORMALIZE(images)).argmax(1) == labels).float().mean())
    assert report["accuracy"]["none"]["mean logits"] == pytest.approx(plain)
    assert report["views"]["10-crop"] == 10 and report["ms_per_image"]["10-crop"] > 0
    corrupted = evaluate_corruptions(model, images[:4], labels[:4], NORMALIZE)
    assert len(corrupted["accuracy"]) == 1 + 3 * len(CORRUPTIONS) and "jpeg 3" in corrupted["accuracy"]


def test_predict_all_equals_predict_for_every_merge():
    from resexplorer.science.tta import predict_all

    model, images = _model(), _pixels(2)
    everything = predict_all(model, images, "flip+translate", NORMALIZE)
    for merge in MERGES:
        single = predict(model, images, "flip+translate", merge, NORMALIZE)
        assert (
            np.allclose(everything[merge].probabilities, single.probabilities)
            and everything[merge].forward_passes == 12
        )


def test_views_said_to_be_the_same_give_the_same_pixels_and_sweeps_match_single_runs():
    from resexplorer.science.tta import many_view_logits

    images = _pixels(2)
    by_key = {}
    for strategy in STRATEGIES.values():
        for name, pixels in view_images(images, strategy):
            key = next(v.key for v in strategy.views if v.name == name)
            assert np.array_equal(by_key.setdefault(key, pixels), pixels), (strategy.name, name)
    model = _model()
    swept = many_view_logits(model, images, list(STRATEGIES.values()), NORMALIZE, batch=7)
    for name, strategy in STRATEGIES.items():
        assert torch.allclose(swept[name], view_logits(model, images, strategy, NORMALIZE), atol=1e-5), name


def test_one_merge_per_distinct_result():
    """No two merges may give the same answer under two names (the geometric
    mean of probabilities is the mean of logits, renormalised)."""
    logits = torch.from_numpy(np.random.default_rng(3).normal(0, 3, (64, 6, 10)).astype(np.float32))
    weights = [v.weight for v in STRATEGIES["flip+translate"].views]
    merged = {name: merge(logits, weights).probabilities.numpy() for name, merge in MERGES.items()}
    for a in merged:
        for b in merged:
            if a < b:
                assert not np.allclose(merged[a], merged[b], atol=1e-4), (a, b)


def _predict_table(table: np.ndarray, weights, merge="majority vote"):
    """predict() on a model that answers view v of image i with table[i, v]:
    each view writes its number into a marker pixel the model reads."""
    n, count, classes = table.shape
    rows = torch.from_numpy(table.reshape(n * count, classes))

    class Lookup(nn.Module):
        def forward(self, x):
            return rows[x[:, 0, 0, 0].long()]  # novermin (a tensor method, not Python 2's long)

    def marked(v):
        def view(x):
            out = x.clone()
            out[:, 0, 0, 0] = x[:, 0, 0, 0] * count + v
            return out

        return view

    strategy = Strategy("table", tuple(View(f"view {v}", marked(v), w) for v, w in enumerate(weights)), "")
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 1, 1).contiguous()
    return predict(Lookup(), images, strategy, merge)


def _mean_probabilities(table: np.ndarray, weights) -> np.ndarray:
    """float64 weighted mean of the views' softmax: the reference tie-break."""
    p = np.exp(table - table.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    w = np.asarray(weights, dtype=np.float64)
    return (p * (w / w.sum())[None, :, None]).sum(1)


def test_majority_vote_breaks_constructed_ties_by_the_tied_classes_mean_probability():
    # Two views, one vote each: class 1 has the higher mean probability by 0.01 (row 0), class 0 by 0.01
    # (row 1); 1e-6 of that difference is below float32's step at a share of 0.5.
    two = np.full((2, 2, 5), -20.0, dtype=np.float32)
    two[0, :, :2] = [[0.0, 1.0], [0.95, 0.0]]
    two[1, :, :2] = [[0.0, 0.95], [1.0, 0.0]]
    # Airbench's six weights (1/4, 1/4, 1/8 x 4), a quarter for each of classes 0 to 3; class 3 has the
    # highest mean probability, by 0.006 over class 0.
    six = np.full((1, 6, 5), -20.0, dtype=np.float32)
    six[0, :, :4] = -2.0
    six[0, 0, :4] = [1.0, -2.0, -2.0, 0.9]
    six[0, 1, 1] = 1.0
    six[0, 2:4, 2] = 1.0
    six[0, 4:6, :4] = [0.9, -2.0, -2.0, 1.05]
    # Four equal views, two for class 0 and two for class 1; class 2, with no vote, has the highest mean
    # probability: the tie is between 0 and 1 only.
    four = np.full((1, 4, 5), -20.0, dtype=np.float32)
    four[0, :, :3] = [[1.0, 0.0, 0.9], [1.0, 0.0, 0.9], [0.0, 1.05, 0.9], [0.0, 1.05, 0.9]]
    cases = [
        (two, [0.5, 0.5], [1, 0], 2),
        (six, [0.25, 0.25, 0.125, 0.125, 0.125, 0.125], [3], 4),
        (four, [1.0] * 4, [1], 2),
    ]
    for table, weights, winners, tied in cases:
        result = _predict_table(table, weights)
        assert result.predictions.tolist() == winners, (weights, _mean_probabilities(table, weights))
        shares = np.sort(result.probabilities, 1)[:, ::-1]
        assert (shares[:, :tied] == 1 / tied).all()  # the vote shares themselves, exactly tied


def test_majority_vote_ties_on_random_logits_go_to_the_higher_mean_probability():
    table = np.random.default_rng(5).normal(0, 1, (4000, 2, 10)).astype(np.float32)
    result = _predict_table(table, [0.5, 0.5])
    votes = table.argmax(2)
    mean = _mean_probabilities(table, [0.5, 0.5])
    tie = votes[:, 0] != votes[:, 1]
    rows = np.arange(len(table))
    second = mean[rows, votes[:, 1]] > mean[rows, votes[:, 0]]
    expected = np.where(tie & second, votes[:, 1], votes[:, 0])
    assert tie.sum() > 1000
    wrong = (result.predictions != expected)[tie]
    assert wrong.sum() == 0, f"{wrong.sum()} of {tie.sum()} ties broken wrongly"
    assert (result.predictions == expected)[~tie].all()


def test_the_ten_crop_is_called_the_papers_imagenet_ten_crop_transposed_to_cifar():
    """The paper tested CIFAR on the single view; its 10 crops were ImageNet's."""
    import resexplorer.science.tta as tta

    assert "the paper's ImageNet 10-crop transposed to CIFAR" in STRATEGIES["10-crop"].about
    assert "the paper's 10-crop" not in tta.__doc__ and "ImageNet 10-crop" in tta.__doc__


def test_every_merge_is_described():
    from resexplorer.science.tta import MERGE_ABOUT

    assert list(MERGE_ABOUT) == list(MERGES) and "geometric mean" in MERGE_ABOUT["mean logits"]


# --- selective TTA ------------------------------------------------------------------------------


class _Counting(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)


def _first_view_confidence(model, images):
    with torch.inference_mode():
        return torch.softmax(model(NORMALIZE(images)), 1).max(1).values


def _selective_at_median(model, images):
    """The selective strategy with its threshold at the median confidence of
    these images on the image alone: half are sure, half are not."""
    from dataclasses import replace

    confidence = _first_view_confidence(model, images)
    middle = confidence.sort().values[len(images) // 2 - 1 : len(images) // 2 + 1]
    threshold = float(middle.mean())  # half-way between the two middle ones: clear of both
    return replace(STRATEGIES["selective"], unsure_below=threshold), confidence < threshold


def test_selective_tta_runs_the_extra_views_only_where_the_image_alone_is_unsure():
    selective = STRATEGIES["selective"]
    assert selective.views == STRATEGIES["flip+translate"].views and 0 < selective.unsure_below < 1
    model, images = _model(), _pixels(8, seed=4)
    strategy, unsure = _selective_at_median(model, images)
    assert 0 < unsure.sum() < len(images)
    counting = _Counting(model)
    for merge in MERGES:
        counting.seen = 0
        result = predict(counting, images, strategy, merge, NORMALIZE)
        passes = len(images) + 5 * int(unsure.sum())
        assert result.forward_passes == passes == counting.seen, merge  # the views skipped were not run
        alone = predict(model, images, "none", merge, NORMALIZE)
        full = predict(model, images, "flip+translate", merge, NORMALIZE)
        sure = ~unsure.numpy()
        assert np.array_equal(result.predictions[sure], alone.predictions[sure]), merge
        assert np.allclose(result.probabilities[sure], alone.probabilities[sure], atol=1e-6), merge
        assert np.array_equal(result.predictions[~sure], full.predictions[~sure]), merge
        assert np.allclose(result.probabilities[~sure], full.probabilities[~sure], atol=1e-5), merge
        assert np.isnan(result.view_logits[sure, 1:]).all() and not np.isnan(result.view_logits[~sure]).any()
        assert not np.isnan(result.view_logits[:, 0]).any()


def test_selective_tta_in_the_shared_sweeps_costs_what_it_runs(monkeypatch):
    from resexplorer.science.tta import many_view_logits, predict_every

    model, images = _model(), _pixels(8, seed=4)
    strategy, unsure = _selective_at_median(model, images)
    monkeypatch.setitem(STRATEGIES, "selective", strategy)
    swept = many_view_logits(model, images, list(STRATEGIES.values()), NORMALIZE)["selective"]
    alone = view_logits(model, images, strategy, NORMALIZE)
    assert torch.equal(torch.isnan(swept), torch.isnan(alone)) and torch.allclose(
        swept, alone, atol=1e-5, equal_nan=True
    )
    every = predict_every(model, images, NORMALIZE)
    passes = len(images) + 5 * int(unsure.sum())
    ms_per_view = every["none"]["mean logits"].milliseconds  # the time of one view of every image
    for merge, result in every["selective"].items():
        single = predict(model, images, strategy, merge, NORMALIZE)
        assert result.forward_passes == passes and result.predictions.tolist() == single.predictions.tolist()
        assert np.allclose(result.probabilities, single.probabilities, atol=1e-5), merge
        assert result.milliseconds == pytest.approx(ms_per_view * passes / len(images))  # its share of the pass


def test_the_test_set_scores_give_selective_tta_its_accuracy_and_average_cost(monkeypatch):
    model, images = _model(), _pixels(12, seed=4)
    labels = torch.arange(12) % 10
    strategy, unsure = _selective_at_median(model, images)
    monkeypatch.setitem(STRATEGIES, "selective", strategy)
    report = evaluate_strategies(model, images, labels, NORMALIZE, chunk=5)
    assert report["passes_per_image"]["selective"] == pytest.approx(1 + 5 * float(unsure.float().mean()))
    assert report["passes_per_image"]["10-crop"] == 10 and report["ms_per_image"]["selective"] > 0
    assert report["unsure_below"] == {"selective": strategy.unsure_below}
    for merge in MERGES:
        chosen = predict(model, images, strategy, merge, NORMALIZE).predictions
        assert report["accuracy"]["selective"][merge] == pytest.approx(float((chosen == labels.numpy()).mean()))


class _SlowFirstPass(nn.Module):
    """A model whose first forward pass is slow and the others quick, as a
    real one's are (kernels chosen and built, buffers allocated the first
    time): a deterministic sleep, not a benchmark."""

    def __init__(self, first_pass_s: float):
        super().__init__()
        self.first_pass_s, self.batches = first_pass_s, []
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

    def forward(self, x):
        if not self.batches:
            time.sleep(self.first_pass_s)
        self.batches.append(len(x))
        return self.net(x)


def test_the_costs_of_every_strategy_leave_out_the_models_first_pass():
    """The first image a model answers costs what the others do: the slow
    first pass is run untimed, once per model and image shape. Without the
    warm-up its 0.8 s, shared out over the distinct views, would be 50 ms
    on every view; the views' own time is well under a millisecond."""
    from resexplorer.science.tta import predict_every

    torch.manual_seed(0)
    model, images = _SlowFirstPass(0.8), _pixels(1, seed=5)
    distinct = len({v.key for s in STRATEGIES.values() for v in s.views})
    every = predict_every(model, images, NORMALIZE)
    assert model.batches == [distinct, distinct]  # the untimed warm-up, then the timed pass
    per_view = every["none"]["mean logits"].milliseconds
    assert 0 < per_view < 1000 * model.first_pass_s / distinct / 4  # not inflated by the first pass
    for by_merge in every.values():  # every strategy its share by views, the first timed included
        assert by_merge["mean probs"].milliseconds == pytest.approx(per_view * by_merge["mean probs"].forward_passes)
    predict_every(model, _pixels(1, seed=6), NORMALIZE)
    assert model.batches == [distinct] * 3  # warm already: the next image costs one pass
    predict_every(model, _pixels(2, seed=6), NORMALIZE)
    assert model.batches == [distinct] * 3 + [2 * distinct] * 2  # a new shape is warmed up too


class _Burst(nn.Module):
    """A quick model with one slow call, the n-th: another program taking
    the machine for a moment (a deterministic sleep, not a benchmark)."""

    def __init__(self, slow_call: int, burst_s: float):
        super().__init__()
        self.slow_call, self.burst_s, self.calls = slow_call, burst_s, 0
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

    def forward(self, x):
        self.calls += 1
        if self.calls == self.slow_call:
            time.sleep(self.burst_s)
        return self.net(x)


def test_a_burst_of_other_work_does_not_make_one_strategy_look_costly():
    """cost_per_image takes each strategy's best of several rounds: a burst
    during one round of the 5-crop strategy leaves its cost at what its
    views cost, not 0.5 s spread over 8 images (62 ms each)."""
    from resexplorer.science.tta_eval import cost_per_image

    images = _pixels(8, seed=3)
    calls_before_5crop = (
        1
        + sum(  # the warm-up, then the strategies before it in the first round
            1 for name in list(STRATEGIES)[: list(STRATEGIES).index("5-crop")]
        )
    )
    model = _Burst(slow_call=calls_before_5crop + 1, burst_s=0.5)
    cost = cost_per_image(model, images, NORMALIZE)
    assert model.calls > calls_before_5crop + 1  # the burst happened, in 5-crop's first round
    assert cost["5-crop"] < 1000 * 0.5 / len(images) / 4
    assert cost["5-crop"] < 20 * cost["none"] + 5  # 5 views against 1, with room for timer noise
