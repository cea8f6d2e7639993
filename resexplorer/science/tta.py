"""Test-time augmentation: views of an image, and ways to merge the model's
answers on them (airbench's `infer`, the paper's ImageNet 10-crop
transposed to CIFAR; the paper tested its CIFAR nets on the single view).

`predict(model, images, strategy, merge)` runs every view of a chunk of
images in one forward pass and merges the answers. Views work in pixel
space (0..255, before normalisation), where the training crops padded with
black, so a padded view looks like the training data did.

Views for 32x32 inputs, exactly:
- identity: the image.
- flip: the image and its mirror (columns reversed).
- flip+translate (airbench level 2): 6 views, the image and its mirror
  (weight 1/4 each), and the image reflect-padded by 1 pixel and cropped at
  rows/cols 0..31 (content moved 1 pixel down and right) and at 2..33
  (moved 1 pixel up and left), each with its mirror (weight 1/8 each).
- 5-crop: the image zero-padded by 4 pixels (40x40, as in training), then
  the 32x32 top-left, top-right, bottom-left and bottom-right corners and the
  centre (torchvision's five_crop); the top-left crop shows original rows and
  columns -4..27 (content moved 4 pixels down and right), the centre crop is
  the image itself.
- 10-crop: the five crops, then the five crops of the mirrored padded
  image (torchvision's ten_crop): the paper's ImageNet 10-crop ("standard
  10-crop testing", 224x224 crops of a resized photo) transposed to CIFAR,
  where the paper itself used the single view; the mirrored image's
  top-left crop is the mirror of the top-right crop.
- multi-scale: the image, a zoom in (the centre 28x28 resized up to 32x32)
  and a zoom out (reflect-padded by 2 to 36x36, resized down to 32x32),
  bilinear with antialiasing (torchvision's resize).
- selective: the image alone first; flip+translate's five other views only
  for the images whose top probability on it is below SELECTIVE_BELOW,
  merged with it as flip+translate merges them. A sure image costs one
  forward pass, an unsure one six; its cost per image is an average, known
  once the images are seen.

Merges of the views' logits, weights as above (equal unless stated):
- mean of logits, then softmax; this is also the geometric mean of the
  probabilities, renormalised (a view's log-probabilities are its logits
  less one constant, which the softmax removes), so that is not listed twice;
- mean of probabilities;
- max-confidence: the single view whose top probability is highest (a
  popular misreading of TTA, shown for comparison);
- majority vote: each view votes for its top class with its weight; the
  result's "probabilities" are the vote shares, counted exactly, and a tie
  goes to the tied class with the highest mean probability.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn

from ..data.sources import CROP_PAD  # the views shift as far as the training crops do
from ..errors import ConfigError

ViewFn = Callable[[torch.Tensor], torch.Tensor]  # float [B, 3, H, W] -> float [B, 3, H, W]


def _mirror(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _translate(offset: int) -> ViewFn:
    """Reflect-pad by 1 and crop at `offset` (0: moved down-right, 2: up-left)."""

    def view(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return F.pad(x, (1, 1, 1, 1), mode="reflect")[..., offset : offset + h, offset : offset + w]

    return view


def _crop(index: int) -> ViewFn:
    """One of torchvision's ten crops of the zero-padded image (0-4: corners
    tl, tr, bl, br and centre; 5-9: the same, mirrored)."""

    def view(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = F.pad(x, (CROP_PAD,) * 4)
        return TF.ten_crop(padded, [h, w])[index]

    return view


def _zoom_in(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return TF.resize(TF.center_crop(x, [h * 7 // 8, w * 7 // 8]), [h, w], antialias=True)


def _zoom_out(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return TF.resize(F.pad(x, (2, 2, 2, 2), mode="reflect"), [h, w], antialias=True)


@dataclass(frozen=True)
class View:
    name: str
    fn: ViewFn
    weight: float = 1.0
    same_as: str = ""  # a view giving identical pixels: sweeps over many strategies run it once

    @property
    def key(self) -> str:
        return self.same_as or self.name


@dataclass(frozen=True)
class Strategy:
    name: str
    views: tuple[View, ...]
    about: str
    # Selective: the views after the first run only on images whose top
    # probability on the first view is below this; None: every view, always.
    unsure_below: float | None = None


# Where selective TTA calls the model unsure. Errors gather among the images a
# net is unsure of, so the extra views go where they can change an answer;
# how many images that is, and what it costs, the test-set scores measure.
SELECTIVE_BELOW = 0.9

FLIP_TRANSLATE = (
    View("identity", lambda x: x, 0.25),
    View("mirror", _mirror, 0.25),
    View("shift ↘", _translate(0), 0.125),
    View("shift ↘ mirror", lambda x: _mirror(_translate(0)(x)), 0.125),
    View("shift ↖", _translate(2), 0.125),
    View("shift ↖ mirror", lambda x: _mirror(_translate(2)(x)), 0.125),
)
CROP_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")
_SAME = {4: "identity", 9: "mirror"}  # the centre crop of the padded image is the image itself
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("none", (View("identity", lambda x: x),), "the image alone"),
        Strategy(
            "flip",
            (View("identity", lambda x: x), View("mirror", _mirror)),
            "the image and its mirror (airbench level 1)",
        ),
        Strategy("flip+translate", FLIP_TRANSLATE, "airbench level 2: mirror, and 1-pixel shifts with their mirrors"),
        Strategy(
            "5-crop",
            tuple(View(n, _crop(i), same_as=_SAME.get(i, "")) for i, n in enumerate(CROP_NAMES)),
            "corners and centre of the 4-pixel-padded image",
        ),
        Strategy(
            "10-crop",
            tuple(View(n, _crop(i), same_as=_SAME.get(i, "")) for i, n in enumerate(CROP_NAMES))
            + tuple(
                View(f"mirrored, {n}", _crop(i + 5), same_as=_SAME.get(i + 5, "")) for i, n in enumerate(CROP_NAMES)
            ),
            "the paper's ImageNet 10-crop transposed to CIFAR (the paper tested CIFAR on the single view): "
            "five crops of the 4-pixel-padded image and five of its mirror",
        ),
        Strategy(
            "multi-scale",
            (View("identity", lambda x: x), View("zoom in", _zoom_in), View("zoom out", _zoom_out)),
            "the image, zoomed in and out",
        ),
        Strategy(
            "selective",
            FLIP_TRANSLATE,
            f"the image alone, and flip+translate's other five views only where the model's top probability on "
            f"the image is below {SELECTIVE_BELOW:.0%}: extra views for the images it is unsure of",
            unsure_below=SELECTIVE_BELOW,
        ),
    )
}


def unsure(first: torch.Tensor, strategy: Strategy) -> torch.Tensor:
    """[B] bool: the images a strategy runs all its views on, given the
    logits [B, C] of its first view; every image unless it is selective."""
    if strategy.unsure_below is None:
        return torch.ones(len(first), dtype=torch.bool, device=first.device)
    return F.softmax(first, dim=1).max(1).values < strategy.unsure_below


def forward_passes(logits: torch.Tensor, strategy: Strategy) -> int:
    """Images through the model for a strategy's view logits [B, V, C]:
    B x V, less the views a selective strategy skipped."""
    return len(logits) + (len(strategy.views) - 1) * int(unsure(logits[:, 0], strategy).sum())


def _as_run(logits: torch.Tensor, strategy: Strategy) -> torch.Tensor:
    """A strategy's view logits [B, V, C] from a sweep that ran every view of
    every image: NaN where a selective strategy would not have run a view."""
    if strategy.unsure_below is None:
        return logits
    out = logits.clone()
    out[~unsure(logits[:, 0], strategy), 1:] = float("nan")
    return out


# --- merges --------------------------------------------------------------------------


class Merged(NamedTuple):
    """A merge's answer for a batch: class probabilities [B, C] and the
    predicted class [B] (the top probability, except where a vote is tied)."""

    probabilities: torch.Tensor
    predictions: torch.Tensor


def _answer(probabilities: torch.Tensor) -> Merged:
    return Merged(probabilities, probabilities.argmax(1))


def _weights(weights: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
    return (w / w.sum()).view(1, -1, 1)  # [1, V, 1]


def merge_mean_logits(logits: torch.Tensor, weights: Sequence[float]) -> Merged:
    return _answer(F.softmax((logits * _weights(weights, logits)).sum(1), dim=1))


def merge_mean_probs(logits: torch.Tensor, weights: Sequence[float]) -> Merged:
    return _answer((F.softmax(logits, dim=2) * _weights(weights, logits)).sum(1))


def merge_max_confidence(logits: torch.Tensor, weights: Sequence[float]) -> Merged:
    probs = F.softmax(logits, dim=2)  # [B, V, C]
    best = probs.max(2).values.argmax(1)  # [B]: the most confident view
    return _answer(probs[torch.arange(len(probs)), best])


def vote_units(weights: Sequence[float]) -> list[int]:
    """The views' weights as whole numbers in the same ratios, exactly, so
    that vote counts compare exactly: a float is a fraction whose
    denominator is a power of two, so a common denominator always exists
    (the strategies' weights, quarters and eighths, become 2 and 1)."""
    fractions = [Fraction(w) for w in weights]
    common = math.lcm(*(f.denominator for f in fractions))
    units = [int(f * common) for f in fractions]
    divisor = math.gcd(*units)
    units = [u // divisor for u in units]
    if divisor == 0 or min(units) < 0 or sum(units) >= 2**63:
        raise ConfigError(f"cannot count votes of the view weights {list(weights)} exactly in 64-bit integers")
    return units


def merge_vote(logits: torch.Tensor, weights: Sequence[float]) -> Merged:
    units = torch.tensor(vote_units(weights), device=logits.device)  # [V], int64
    votes = logits.argmax(2)  # [B, V]
    counts = torch.zeros(logits.shape[0], logits.shape[2], dtype=torch.int64, device=logits.device)
    counts.scatter_add_(1, votes, units.expand_as(votes))  # [B, C]: each class's weight of votes, exact
    tied = counts == counts.max(1, keepdim=True).values
    # A float tie-break added to the shares is lost where they are large: only the tied classes compete.
    mean = merge_mean_probs(logits, weights).probabilities.masked_fill(~tied, -1.0)
    return Merged((counts / units.sum()).to(logits.dtype), mean.argmax(1))


MergeFn = Callable[[torch.Tensor, Sequence[float]], Merged]  # view logits [B, V, C], view weights -> Merged
MERGES: dict[str, MergeFn] = {
    "mean logits": merge_mean_logits,
    "mean probs": merge_mean_probs,
    "max-confidence": merge_max_confidence,
    "majority vote": merge_vote,
}

MERGE_ABOUT = {
    "mean logits": "softmax of the views' mean logits; the same as the geometric mean of their probabilities, "
    "renormalised",
    "mean probs": "the mean of the views' probabilities",
    "max-confidence": "the single view the model is most sure of (a popular misreading of TTA, for comparison)",
    "majority vote": "each view votes for its top class; the shares of the vote, a tie going to the tied class "
    "with the highest mean probability",
}


# --- predict ---------------------------------------------------------------------------


@dataclass
class TTAResult:
    strategy: str
    merge: str
    probabilities: np.ndarray  # [B, C], merged
    predictions: np.ndarray  # [B]
    view_logits: np.ndarray  # [B, V, C]; NaN for the views a selective strategy did not run
    forward_passes: int  # images through the model: B x views, less the views not run
    milliseconds: float

    @property
    def view_probabilities(self) -> np.ndarray:
        """[B, V, C]: each view's own softmax, what the model says of that view
        alone (NaN for a view not run)."""
        shifted = np.exp(self.view_logits - self.view_logits.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)


def view_logits(
    model: nn.Module, images: torch.Tensor, strategy: Strategy, normalize: Callable | None = None, chunk: int = 128
) -> torch.Tensor:
    """[B, V, C] logits of every view; all views of a chunk of images go
    through the model as one batch. images: uint8 or float pixels when
    `normalize` is given, else what the model takes. A selective strategy
    runs its first view, then the others on the unsure images only, as a
    second batch; the views it did not run are NaN."""

    def run(views: list[View], x: torch.Tensor) -> torch.Tensor:  # [b, len(views), C]
        stacked = torch.cat([view.fn(x) for view in views])  # [len(views)*b, 3, H, W]
        logits = model(normalize(stacked) if normalize else stacked).float()
        return logits.view(len(views), len(x), -1).transpose(0, 1)

    out = []
    with torch.inference_mode():
        for start in range(0, len(images), chunk):
            x = images[start : start + chunk].float()  # [b, 3, H, W]
            if strategy.unsure_below is None:
                out.append(run(list(strategy.views), x))
                continue
            first = run([strategy.views[0]], x)  # [b, 1, C]
            logits = torch.cat([first, first.new_full((len(x), len(strategy.views) - 1, first.shape[2]), torch.nan)], 1)
            extra = unsure(first[:, 0], strategy)
            if extra.any():
                logits[extra, 1:] = run(list(strategy.views[1:]), x[extra])
            out.append(logits)
    return torch.cat(out)


def many_view_logits(
    model: nn.Module,
    images: torch.Tensor,
    strategies: Sequence[Strategy],
    normalize: Callable | None = None,
    batch: int = 256,
) -> dict[str, torch.Tensor]:
    """{strategy name: [B, V, C] logits} for several strategies, each
    distinct view (by key) run once; about `batch` view images per forward
    pass, which suits CPU caches best. Every view runs on every image, for
    the strategies that need it; a selective strategy's logits are NaN
    where it alone would not have run a view, as view_logits gives them."""
    unique: dict[str, ViewFn] = {}
    for strategy in strategies:
        for view in strategy.views:
            unique.setdefault(view.key, view.fn)
    per_chunk = max(1, batch // len(unique))
    pieces: dict[str, list[torch.Tensor]] = {key: [] for key in unique}
    with torch.inference_mode():
        for start in range(0, len(images), per_chunk):
            x = torch.as_tensor(images[start : start + per_chunk]).float()
            stacked = torch.cat([fn(x) for fn in unique.values()])
            logits = model(normalize(stacked) if normalize else stacked).float().view(len(unique), len(x), -1)
            for key, part in zip(unique, logits):
                pieces[key].append(part)
    by_key = {key: torch.cat(parts) for key, parts in pieces.items()}
    return {s.name: _as_run(torch.stack([by_key[v.key] for v in s.views], dim=1), s) for s in strategies}


def predict(
    model: nn.Module,
    images: torch.Tensor,
    views: Strategy | str,
    merge: str = "mean logits",
    normalize: Callable | None = None,
    chunk: int = 128,
) -> TTAResult:
    """Merged class probabilities of `images` under a TTA strategy."""
    strategy = STRATEGIES[views] if isinstance(views, str) else views
    images = torch.as_tensor(images)
    if merge not in MERGES:
        raise ConfigError(f"unknown merge {merge!r}; choose one of {', '.join(MERGES)}")
    start = time.perf_counter()
    logits = view_logits(model, images, strategy, normalize, chunk)
    merged = all_merges(logits, strategy, [merge])[merge]
    ms = 1000 * (time.perf_counter() - start)
    return TTAResult(strategy.name, merge, *_numpy(merged), logits.cpu().numpy(), forward_passes(logits, strategy), ms)


def predict_all(
    model: nn.Module, images: torch.Tensor, views: Strategy | str, normalize: Callable | None = None, chunk: int = 128
) -> dict[str, TTAResult]:
    """Every merge of one strategy, its views run once; each result carries
    the cost of those views (merging is negligible beside them)."""
    strategy = STRATEGIES[views] if isinstance(views, str) else views
    images = torch.as_tensor(images)
    start = time.perf_counter()
    logits = view_logits(model, images, strategy, normalize, chunk)
    ms = 1000 * (time.perf_counter() - start)
    passes = forward_passes(logits, strategy)
    shown = logits.cpu().numpy()
    return {
        merge: TTAResult(strategy.name, merge, *_numpy(merged), shown, passes, ms)
        for merge, merged in all_merges(logits, strategy).items()
    }


# The models predict_every has run, each with the image batch shapes it ran
# them on. A model's first pass at a shape pays once for what later passes
# reuse (kernels chosen and built, buffers allocated, threads started): no
# strategy's cost, yet it inflated every strategy of the first image a model
# answered. Held weakly: a model the app lets go is forgotten with it.
_WARMED: weakref.WeakKeyDictionary[nn.Module, set[tuple]] = weakref.WeakKeyDictionary()


def _warm_up(model: nn.Module, images: torch.Tensor, strategies: list[Strategy], normalize: Callable | None) -> None:
    """One untimed pass of exactly what predict_every is about to time, the
    first time this model sees images of this shape; later images of the
    same shape (the page's 32x32 images, one at a time) cost nothing more."""
    shape = (tuple(images.shape), images.dtype)
    seen = _WARMED.setdefault(model, set())
    if shape not in seen:
        many_view_logits(model, images, strategies, normalize)
        seen.add(shape)


def predict_every(
    model: nn.Module, images: torch.Tensor, normalize: Callable | None = None
) -> dict[str, dict[str, TTAResult]]:
    """Every strategy x merge of `images`: {strategy: {merge: TTAResult}}.
    Each distinct view runs once for all strategies (many_view_logits), so
    the identity, the mirror and the centre crops are not run again per
    strategy. There is no separate run to time per strategy, so each one's
    milliseconds are its share of the shared pass: the views it runs (per
    image, on average, for a selective strategy) times the time per view,
    what the strategy costs alone at that rate. The model is warmed up first
    (_warm_up), so that the time is what any image costs, the first included."""
    strategies = list(STRATEGIES.values())
    images = torch.as_tensor(images)
    _warm_up(model, images, strategies, normalize)
    start = time.perf_counter()
    logits = many_view_logits(model, images, strategies, normalize)
    per_view_ms = 1000 * (time.perf_counter() - start) / len({v.key for s in strategies for v in s.views})
    answers = {}
    for strategy in strategies:
        views = logits[strategy.name]
        shown = views.cpu().numpy()
        passes = forward_passes(views, strategy)
        ms = per_view_ms * passes / len(images)
        answers[strategy.name] = {
            merge: TTAResult(strategy.name, merge, *_numpy(merged), shown, passes, ms)
            for merge, merged in all_merges(views, strategy).items()
        }
    return answers


def _numpy(merged: Merged) -> tuple[np.ndarray, np.ndarray]:
    return merged.probabilities.cpu().numpy(), merged.predictions.cpu().numpy()


def all_merges(logits: torch.Tensor, strategy: Strategy, merges: Sequence[str] = tuple(MERGES)) -> dict[str, Merged]:
    """Every merge (or those named) of one strategy's view logits [B, V, C]
    (views run once). A selective strategy's answer is, per image, the
    merge of the first view alone where it was sure, of all views where not."""
    weights = [v.weight for v in strategy.views]
    if strategy.unsure_below is None:
        return {name: MERGES[name](logits, weights) for name in merges}
    extra = unsure(logits[:, 0], strategy)
    answers = {}
    for name in merges:
        alone = MERGES[name](logits[:, :1], weights[:1])
        if extra.any():
            full = MERGES[name](logits[extra], weights)
            alone.probabilities[extra], alone.predictions[extra] = full.probabilities, full.predictions
        answers[name] = alone
    return answers


def view_images(images: torch.Tensor, strategy: Strategy | str) -> list[tuple[str, np.ndarray]]:
    """(view name, uint8 [B, 3, H, W]) for showing what the model sees."""
    strategy = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    x = torch.as_tensor(images).float()
    return [(view.name, view.fn(x).round().clamp(0, 255).to(torch.uint8).cpu().numpy()) for view in strategy.views]
