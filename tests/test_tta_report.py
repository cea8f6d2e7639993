"""The TTA page's work (services/tta_report.py): the answers per image and strategy, the
view gallery and the test-set score grids. Cases whose right answer is known."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import random_pixels, tiny_loaded_model

from resexplorer.data.images import enlarged
from resexplorer.science.tta import MERGES, STRATEGIES, TTAResult, predict, view_images
from resexplorer.services import tta_report


class _Counting(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.batches = net, []

    def forward(self, x):
        self.batches.append(len(x))
        return self.net(x)


def test_every_strategy_of_an_image_shares_its_views_and_agrees_with_predict():
    loaded = tiny_loaded_model()
    counting = _Counting(loaded.model)
    image = random_pixels(1)[0]
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
    loaded = tiny_loaded_model()
    result = predict(loaded.model, random_pixels(2), "flip", "mean logits", loaded.inputs)
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
    loaded = tiny_loaded_model()
    answers = tta_report.image_answers(loaded, random_pixels(1)[0])
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

    loaded, images = tiny_loaded_model(), torch.from_numpy(random_pixels(6))
    labels = torch.arange(6) % 10
    clean = {**evaluate_strategies(loaded.model, images, labels, loaded.inputs), "n_images": 6, "images": "random"}
    grid, merges, strategies, costs = tta_report.clean_scores(clean, "mean logits")
    assert (len(grid), len(grid[0])) == (len(STRATEGIES), len(MERGES)) and len(costs) == len(STRATEGIES)
    assert all(v is not None for row in grid for v in row) and tta_report.unscored(clean) == []
    assert all(row["passes per image"] == len(STRATEGIES[row["strategy"]].views) for row in costs)  # all unsure
    corrupted = {**evaluate_corruptions(loaded.model, images, labels, loaded.inputs), "n_images": 6}
    grid, others, cases = tta_report.corruption_changes(corrupted, "mean logits")
    assert cases[0] == "clean" and len(cases) == 16 and len(others) == len(STRATEGIES) - 1
