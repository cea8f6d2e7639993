"""The test-time augmentation page's tables, bars, view galleries and
grids, as plain data: read from the answers of science/tta.py on one image
and from the test-set scores cached by services/analysis.py (their record
layout is known here, not in the page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..data.images import enlarged
from ..science.tta import MERGES, STRATEGIES, TTAResult, predict_every, view_images
from ..science.tta_eval import SCORING

# Every strategy x merge of one image: {strategy: {merge: TTAResult}}, as science.tta.predict_every gives it.
Answers = Mapping[str, Mapping[str, TTAResult]]

# Test-set accuracy is written to this many decimals wherever it is shown
# (heat map, cost table): on 10,000 images its standard error is about 0.3
# points, so a second decimal would be noise.
ACCURACY_DECIMALS = 1


def image_answers(loaded, image: np.ndarray) -> dict[str, dict[str, TTAResult]]:
    """Every strategy x merge of one uint8 image [3, H, W] on a LoadedModel
    (science/inference.py), each view the strategies share run once."""
    return predict_every(loaded.model, image[None], loaded.inputs)


def _top(result: TTAResult, classes: Sequence[str]) -> str:
    top = int(result.predictions[0])
    return f"{classes[top]} {100 * result.probabilities[0, top]:.0f}%"


def answer_rows(answers: Answers, classes: Sequence[str], merge: str) -> list[dict]:
    """A row per strategy: its cost first, as plain numbers (forward passes;
    milliseconds, approximate since predict_every runs the views strategies
    share once and shares out the time), then each merge's top class and
    probability, "cat 87%". Cost first and in short cells: the table sits in
    a narrow column, and what is cut off or scrolled to is the end."""
    rows = []
    for strategy, by_merge in answers.items():
        shown = by_merge[merge]
        rows.append(
            {
                "strategy": strategy,
                "passes": int(shown.forward_passes),
                "ms": round(float(shown.milliseconds), 1),
                **{name: _top(result, classes) for name, result in by_merge.items()},
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
    that view alone (its own softmax, not the merge), or that the strategy
    did not run it (a selective one, sure of the image alone)."""
    views = view_images(image[None], result.strategy)
    pictures, captions = [], []
    for (name, pixels), probabilities in zip(views, result.view_probabilities[0]):
        pictures.append(enlarged(pixels[0], factor))
        if np.isnan(probabilities).any():
            captions.append(f"{name}: not run")
            continue
        top = int(probabilities.argmax())
        captions.append(f"{name}: {classes[top]} {100 * probabilities[top]:.0f}%")
    return pictures, captions


def accuracy_on_known(answers: Sequence[Answers], truths: Sequence[int]) -> list[list[float]]:
    """Accuracy (%) of every strategy (rows) x merge (columns) over images
    with a known class: answers[i] are image i's, truths[i] its class."""
    return [
        [100 * sum(int(a[s][m].predictions[0]) == t for a, t in zip(answers, truths)) / len(truths) for m in MERGES]
        for s in STRATEGIES
    ]


# Merges whose accuracies changed in SCORING: a record scored before shows them as not yet scored
# (scoring 1 broke the vote's ties by an epsilon that float32 lost near shares of 0.5).
RESCORED = ("majority vote",)


def _accuracy(record: dict, by_strategy: Mapping, strategy: str, merge: str) -> float | None:
    """An accuracy from a record's {strategy: {merge: accuracy}}, or None
    where it holds none that the current scoring would give."""
    if record.get("scoring", 1) < SCORING and merge in RESCORED:
        return None
    return by_strategy.get(strategy, {}).get(merge)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def unscored(record: dict) -> list[str]:
    """The strategies and merges a tta_testset or tta_corruptions record has
    no accuracies for, as they are scored now: none for a current record;
    for an older one, what did not exist or was scored otherwise then."""
    accuracy = record["accuracy"]
    if "clean" in accuracy:  # a tta_corruptions record: cases of {strategy: {merge: accuracy}}
        accuracy = accuracy["clean"]
    return [s for s in STRATEGIES if s not in accuracy] + [
        m for m in MERGES if all(_accuracy(record, accuracy, s, m) is None for s in STRATEGIES)
    ]


def unscored_note(record: dict) -> str:
    """What a record scored by an earlier version lacks, or ""."""
    missing = unscored(record)
    if not missing:
        return ""
    return (
        f"Scored by an earlier version of this page: {', '.join(missing)} not yet scored (blank). Score the test "
        "set again to fill them in."
    )


def clean_scores(clean: dict, merge: str) -> tuple[list[list[float | None]], list[str], list[str], list[dict]]:
    """A tta_testset record: accuracy (%) as strategies (rows) x merges,
    None where the record has none (see unscored); those merges and
    strategies, every current one; and a row per strategy of its accuracy
    with `merge` against its cost: forward passes per image (on average,
    for a selective strategy) and milliseconds per image."""
    strategies, merges = list(STRATEGIES), list(MERGES)
    accuracy = clean["accuracy"]
    grid = [[_percent(_accuracy(clean, accuracy, s, m)) for m in merges] for s in strategies]
    # Records from before selective TTA give views only: a fixed strategy's passes per image are its views.
    passes = clean.get("passes_per_image") or {s: float(v) for s, v in clean["views"].items()}
    costs = []
    for s in strategies:
        ms = clean["ms_per_image"].get(s)
        costs.append(
            {
                "strategy": s,
                "accuracy %": _round(_percent(_accuracy(clean, accuracy, s, merge)), ACCURACY_DECIMALS),
                "passes per image": _round(passes.get(s)),
                "ms per image": _round(ms),
            }
        )
    return grid, merges, strategies, costs


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def corruption_changes(corrupted: dict, merge: str) -> tuple[list[list[float | None]], list[str], list[str]]:
    """A tta_corruptions record: the accuracy change in points against no
    TTA, with `merge`, as cases (clean first, then each corruption and
    severity; rows) x strategies other than none, None where the record has
    no accuracy (see unscored); and those two labels."""
    accuracy = corrupted["accuracy"]
    cases = ["clean", *(c for c in accuracy if c != "clean")]
    others = [s for s in STRATEGIES if s != "none"]
    grid = []
    for case in cases:
        base = _accuracy(corrupted, accuracy[case], "none", merge)
        row = [_accuracy(corrupted, accuracy[case], s, merge) for s in others]
        grid.append([None if base is None or a is None else 100 * (a - base) for a in row])
    return grid, others, cases


def testset_caption(clean: dict, merge: str) -> str:
    said = [
        f"Accuracy (%) on {clean['n_images']:,} test images of {clean['images']}. Beside it, each strategy's "
        f"accuracy ({merge}) against its cost per image: forward passes (on average) and milliseconds."
    ]
    for strategy, threshold in clean.get("unsure_below", {}).items():
        views = clean["views"][strategy]
        share = (clean["passes_per_image"][strategy] - 1) / (views - 1)
        said.append(
            f"The {strategy} strategy ran its extra views on {share:.0%} of the images (top probability below "
            f"{threshold:.0%})."
        )
    return " ".join(said)


def corruptions_caption(corrupted: dict, merge: str) -> str:
    return (
        f"Accuracy change in points against no TTA ({merge}), on {corrupted['n_images']:,} test images; "
        "severities 1 (mild) to 3. Blue helps, red hurts."
    )
