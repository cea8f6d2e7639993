"""The Attributions page's data, as plain values to draw: the test-image
gallery and its filter, each model's top classes, the grid of maps on one
colour scale per column or per map, the deletion curves and the
randomisation checks (science/attribution.py computes them)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.images import enlarged
from ..progress import Progress
from ..science.attribution import METHODS, Explanation, SanityCheck, overlay, sanity_check
from .figures import Series

GALLERY_SHOWN = 40  # test images shown to pick from, of those the filter keeps
METHOD_DASHES = dict(zip(METHODS, ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")))
RANDOM_ORDER = "random order"
RANDOM_ORDER_DASH = "2px,6px"  # sparse dots: the baseline, unlike any method's line
FAINT = 0.1  # a map this much weaker than its column's scale is too faint to read on it


def gallery_images(pool, n: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, 3, H, W] test images of an analysis.ImagePool, class-balanced, and their labels."""
    images, labels = pool.take("test", n)
    return images.numpy(), labels.numpy()


def predicted_classes(loaded, images: np.ndarray) -> np.ndarray:
    """[N]: a LoadedModel's predicted class of each uint8 image."""
    return loaded.probabilities(images).argmax(1)


@dataclass
class Gallery:
    """Test images to pick one from, and what each model says of them."""

    images: np.ndarray  # uint8 [N, 3, H, W]
    labels: np.ndarray  # [N] true classes
    predictions: np.ndarray  # [models, N] predicted classes

    def __post_init__(self):
        self.labels = np.asarray(self.labels)
        self.predictions = np.asarray(self.predictions).reshape(-1, len(self.labels))

    def matching(self, wanted: int | None = None, one_wrong: bool = False, limit: int = GALLERY_SHOWN) -> list[int]:
        """Indices of the first `limit` images of class `wanted` (any when
        None) that, with `one_wrong`, exactly one model gets wrong: the
        images where plain and residual nets disagree."""
        keep = np.ones(len(self.labels), dtype=bool)
        if wanted is not None:
            keep &= self.labels == wanted
        if one_wrong:
            keep &= (self.predictions != self.labels[None]).sum(0) == 1
        return np.flatnonzero(keep)[:limit].tolist()

    def thumbnails(self, indices: Sequence[int]) -> list[np.ndarray]:
        return [enlarged(self.images[i]) for i in indices]

    def caption(self, index: int, classes: Sequence[str], models: Sequence[str]) -> str:
        """ "#7 cat | plain-56: dog · resnet-56: cat": the truth and each model's answer."""
        said = " · ".join(f"{name}: {classes[self.predictions[k, index]]}" for k, name in enumerate(models))
        return f"#{index} {classes[self.labels[index]]} | {said}"

    def picked(self, index: int) -> tuple[np.ndarray, int]:
        """One image, uint8 [3, H, W], and its class."""
        return self.images[index], int(self.labels[index])


def image_key(image: np.ndarray) -> str:
    """A short fingerprint of an image's pixels: results of one image are not shown for another."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]


def top_rows(explanations: Sequence[Explanation], classes: Sequence[str], k: int = 3) -> list[dict]:
    """A row per model: its k likeliest classes with probabilities, and the class explained."""
    rows = []
    for ex in explanations:
        top = np.argsort(-ex.probabilities, kind="stable")[:k]
        said = {f"top {n + 1}": f"{classes[c]} {100 * ex.probabilities[c]:.1f}%" for n, c in enumerate(top)}
        rows.append({"model": ex.model, **said, "explained class": classes[ex.target]})
    return rows


def map_scale(maps) -> float:
    """The 99th percentile of |value| over one or several maps, so a few
    extreme pixels do not wash the rest out."""
    return float(np.percentile(np.abs(np.asarray(maps)), 99))


@dataclass
class MapGrid:
    pictures: list[list[np.ndarray]]  # per model, per method: the map over the greyed image, uint8 [H, W, 3]
    captions: list[list[str]]  # "model · method"
    faint: list[str]  # models whose maps are over ten times weaker than another's on a shared scale


def attribution_grid(
    explanations: Sequence[Explanation],
    methods: Sequence[str],
    image: np.ndarray,
    signed: bool,
    per_column: bool,
    upscale: int = 5,
) -> MapGrid:
    """A row of pictures per model, a column per method. per_column: one
    colour scale per method for all models, so they compare directly; else
    each map on its own scale, to see its shape."""
    maps = [[ex.attributions[m].pixel_map(signed)[0] for m in methods] for ex in explanations]  # [H, W] each
    column_scale = [map_scale([row[j] for row in maps]) for j in range(len(methods))]
    pictures, captions, faint = [], [], set()
    for ex, row in zip(explanations, maps):
        scales = [map_scale(pixel_map) for pixel_map in row]
        shared = column_scale if per_column else scales
        pictures.append([overlay(image, pixel_map, s, signed, upscale=upscale) for pixel_map, s in zip(row, shared)])
        captions.append([f"{ex.model} · {METHODS[m]}" for m in methods])
        if any(own < FAINT * column for own, column in zip(scales, column_scale)):
            faint.add(ex.model)
    return MapGrid(pictures, captions, sorted(faint))


def seconds_per_map(explanations: Sequence[Explanation], methods: Sequence[str]) -> str:
    """ "resnet-56: Saliency 0.01, Grad-CAM 0.02; ...": what each map took."""
    return "; ".join(
        f"{ex.model}: " + ", ".join(f"{METHODS[m]} {ex.attributions[m].seconds:.2f}" for m in methods)
        for ex in explanations
    )


BAND_SE = 2  # the random baseline's band: this many standard errors of its mean either side


def deletion_series(explanations: Sequence[Explanation], methods: Sequence[str]) -> list[Series]:
    """Each model's and method's deletion curve, then the model's random-order
    baseline with its band (BAND_SE standard errors of the mean over its
    orders): probability of the explained class against the share of
    pixels removed (%)."""
    series = []
    for ex in explanations:
        curves = [(f"{ex.model} · {METHODS[m]}", ex.deletion[m], METHOD_DASHES[m]) for m in methods]
        curves.append((f"{ex.model} · {RANDOM_ORDER}", ex.random_deletion, RANDOM_ORDER_DASH))
        series += [
            Series(
                label,
                ex.model,
                [100 * f for f in curve.fractions],
                curve.probability,
                dash=dash,
                band=[BAND_SE * e for e in curve.spread] if curve.spread else None,
            )
            for label, curve, dash in curves
        ]
    return series


def deletion_areas(explanations: Sequence[Explanation], methods: Sequence[str]) -> list[dict]:
    """A row per model: each method's area under its deletion curve, and the
    random order's (lower is more faithful; a map should beat random)."""
    return [
        {
            "model": ex.model,
            **{METHODS[m]: round(ex.deletion[m].area, 3) for m in methods},
            RANDOM_ORDER: round(ex.random_deletion.area, 3),
            f"{RANDOM_ORDER} ± {BAND_SE} SE": (
                None if ex.random_deletion.area_se is None else round(BAND_SE * ex.random_deletion.area_se, 3)
            ),
        }
        for ex in explanations
    ]


def sanity_checks(
    models: Sequence,
    explanations: Sequence[Explanation],
    image: np.ndarray,
    methods: Sequence[str],
    baseline: str,
    progress: Progress | None = None,
) -> list[tuple[str, SanityCheck]]:
    """The randomisation check of every method on every LoadedModel, for the
    class each one's explanation explained: (model name, check)."""
    checks = []
    total = len(models) * len(methods)
    for k, (loaded, ex) in enumerate(zip(models, explanations)):
        seen = loaded.inputs(image[None])[0]
        for j, method in enumerate(methods):
            checks.append((loaded.name, sanity_check(loaded.model, seen, ex.target, method, baseline, loaded.black())))
            if progress:
                progress((k * len(methods) + j + 1) / total, f"{loaded.name}: {METHODS[method]}")
    return checks


def sanity_series(checks: Sequence[tuple[str, SanityCheck]]) -> list[Series]:
    """Each check's similarity to the trained model's map, step by step."""
    return [
        Series(f"{name} · {METHODS[c.method]}", name, c.steps, c.similarity, dash=METHOD_DASHES[c.method])
        for name, c in checks
    ]


def flagged(checks: Sequence[tuple[str, SanityCheck]]) -> list[str]:
    """ "Saliency on plain-56": the maps that barely changed with random weights."""
    return [f"{METHODS[c.method]} on {name}" for name, c in checks if c.flagged]
