"""The test-time augmentation page's tables, bars, view galleries and
grids, as plain data: read from the answers of science/tta.py on one image
and from the test-set scores cached by services/analysis.py (their record
layout is known here, not in the page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..data.images import enlarged
from ..science.tta import MERGES, STRATEGIES, TTAResult, predict_every, view_images

# Every strategy x merge of one image: {strategy: {merge: TTAResult}}, as science.tta.predict_every gives it.
Answers = Mapping[str, Mapping[str, TTAResult]]


def image_answers(loaded, image: np.ndarray) -> dict[str, dict[str, TTAResult]]:
    """Every strategy x merge of one uint8 image [3, H, W] on a LoadedModel
    (science/inference.py), each view the strategies share run once."""
    return predict_every(loaded.model, image[None], loaded.inputs)


def _top(result: TTAResult, classes: Sequence[str]) -> str:
    top = int(result.predictions[0])
    return f"{classes[top]} {100 * result.probabilities[0, top]:.0f}%"


def answer_rows(answers: Answers, classes: Sequence[str], merge: str) -> list[dict]:
    """A row per strategy: each merge's top class and probability, and the
    strategy's cost: forward passes, and milliseconds, approximate (≈) since
    predict_every runs the views strategies share once and shares out the time."""
    rows = []
    for strategy, by_merge in answers.items():
        shown = by_merge[merge]
        passes = f"{shown.forward_passes} pass{'es' if shown.forward_passes > 1 else ''}"
        rows.append(
            {
                "strategy": strategy,
                **{name: _top(result, classes) for name, result in by_merge.items()},
                "cost": f"{passes}, ≈{shown.milliseconds:.0f} ms",
            }
        )
    return rows


def merged_probabilities(answers: Answers, merge: str) -> dict[str, list[float]]:
    """{strategy: class probabilities} of one merge, for the bars."""
    return {strategy: by_merge[merge].probabilities[0].tolist() for strategy, by_merge in answers.items()}


def view_gallery(
    image: np.ndarray, result: TTAResult, classes: Sequence[str], factor: int = 3
) -> tuple[list[np.ndarray], list[str]]:
    """What the model saw of one uint8 image [3, H, W] under `result`'s
    strategy, each view enlarged, and captions saying what it answered for
    that view alone (its own softmax, not the merge)."""
    views = view_images(image[None], result.strategy)
    pictures, captions = [], []
    for (name, pixels), probabilities in zip(views, result.view_probabilities[0]):
        top = int(probabilities.argmax())
        pictures.append(enlarged(pixels[0], factor))
        captions.append(f"{name}: {classes[top]} {100 * probabilities[top]:.0f}%")
    return pictures, captions


def accuracy_on_known(answers: Sequence[Answers], truths: Sequence[int]) -> list[list[float]]:
    """Accuracy (%) of every strategy (rows) x merge (columns) over images
    with a known class: answers[i] are image i's, truths[i] its class."""
    return [
        [100 * sum(int(a[s][m].predictions[0]) == t for a, t in zip(answers, truths)) / len(truths) for m in MERGES]
        for s in STRATEGIES
    ]


def clean_scores(clean: dict) -> tuple[list[list[float]], list[str], list[str], list[dict]]:
    """A tta_testset record: accuracy (%) as strategies (rows) x merges,
    those merges and strategies, and a cost row per strategy."""
    strategies, merges = clean["strategies"], clean["merges"]
    grid = [[100 * clean["accuracy"][s][m] for m in merges] for s in strategies]
    costs = [
        {"strategy": s, "views": clean["views"][s], "ms per image": round(clean["ms_per_image"][s], 2)}
        for s in strategies
    ]
    return grid, merges, strategies, costs


def corruption_changes(corrupted: dict, merge: str) -> tuple[list[list[float]], list[str], list[str]]:
    """A tta_corruptions record: the accuracy change in points against no
    TTA, with `merge`, as cases (clean first, then each corruption and
    severity; rows) x strategies other than none; and those two labels."""
    accuracy = corrupted["accuracy"]
    cases = ["clean", *(c for c in accuracy if c != "clean")]
    others = [s for s in corrupted["strategies"] if s != "none"]
    grid = [[100 * (accuracy[c][s][merge] - accuracy[c]["none"][merge]) for s in others] for c in cases]
    return grid, others, cases


def testset_caption(clean: dict) -> str:
    return f"Accuracy (%) on {clean['n_images']:,} test images of {clean['images']}."


def corruptions_caption(corrupted: dict, merge: str) -> str:
    return (
        f"Accuracy change in points against no TTA ({merge}), on {corrupted['n_images']:,} test images; "
        "severities 1 (mild) to 3. Blue helps, red hurts."
    )
