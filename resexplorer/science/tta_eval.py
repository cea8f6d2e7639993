"""Which TTA strategies really help: accuracy of every strategy x merge on
test images, clean and under corruptions, with the cost per image: forward
passes (on average, for the selective strategy, which runs its extra views
only on the images it is unsure of) and milliseconds."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ..progress import Progress
from .landscape import fold_batchnorm
from .tta import MERGES, STRATEGIES, all_merges, forward_passes, many_view_logits, view_logits

# What the records' numbers mean; a record without "scoring" is 1: the vote
# broke ties by adding 1e-6 x the mean probability (lost near shares of 0.5),
# a "geometric mean" merge repeated the mean of logits, and there was no
# selective strategy. 2: ties broken exactly, one merge per distinct result,
# the selective strategy with its average passes per image.
SCORING = 2

# Three severities each, mild to strong, on uint8 pixels.
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "gaussian noise": (8.0, 16.0, 32.0),  # std in pixel levels
    "blur": (0.6, 1.0, 1.5),  # Gaussian sigma in pixels
    "jpeg": (50, 25, 10),  # quality
    "contrast": (0.7, 0.5, 0.3),  # factor towards grey
    "brightness": (1.3, 1.6, 2.0),  # factor
}


def corrupt(images: torch.Tensor, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the same, corrupted; deterministic in seed."""
    if kind == "gaussian noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(images.shape, generator=gen) * level
        return (images.float() + noise.to(images.device)).round().clamp(0, 255).to(torch.uint8)
    if kind == "blur":
        return TF.gaussian_blur(images, kernel_size=[5, 5], sigma=[level, level])
    if kind == "jpeg":  # through Pillow: torchvision's codecs are deprecated
        out = []
        for image in images.cpu().numpy().transpose(0, 2, 3, 1):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=int(level))
            out.append(np.asarray(Image.open(buffer).convert("RGB")))
        return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy()).to(images.device)
    if kind == "contrast":
        return TF.adjust_contrast(images, level)
    if kind == "brightness":
        return TF.adjust_brightness(images, level)
    raise ValueError(f"unknown corruption {kind!r}")


def _scores(model, images, labels, normalize) -> tuple[dict, dict]:
    """{strategy: {merge: accuracy}} and {strategy: forward passes}, every
    distinct view run once."""
    logits = many_view_logits(model, images, list(STRATEGIES.values()), normalize)
    accuracy, passes = {}, {}
    for name, strategy in STRATEGIES.items():
        merged = all_merges(logits[name], strategy)
        accuracy[name] = {
            merge: float((answer.predictions.cpu() == labels.cpu()).float().mean()) for merge, answer in merged.items()
        }
        passes[name] = forward_passes(logits[name], strategy)
    return accuracy, passes


def cost_per_image(model, images: torch.Tensor, normalize, n: int = 256, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per image of each strategy run alone, as a user pays
    for it, timed on up to n images (a selective strategy's depends on how
    many of those it is unsure of). The best of `rounds` rounds, each
    timing every strategy in turn: a burst of other work on the machine
    slows one round of one strategy, not its best, so the costs compare
    (a single round once put 5-crop at 2.7 times 10-crop)."""
    sample = images[:n]
    view_logits(model, sample[:8], STRATEGIES["none"], normalize)  # warm-up
    cost = dict.fromkeys(STRATEGIES, math.inf)
    for _ in range(rounds):
        for name, strategy in STRATEGIES.items():
            start = time.perf_counter()
            view_logits(model, sample, strategy, normalize, chunk=max(1, 256 // len(strategy.views)))
            cost[name] = min(cost[name], 1000 * (time.perf_counter() - start) / len(sample))
    return cost


def evaluate_strategies(
    model, images: torch.Tensor, labels: torch.Tensor, normalize, progress: Progress | None = None, chunk: int = 1000
) -> dict:
    """Accuracy of every strategy x merge on uint8 images, and each
    strategy's cost: forward passes and milliseconds per image. Runs on a
    copy with BN folded into the convs (the same function, faster), and
    runs each distinct view once for all strategies."""
    fast, _ = fold_batchnorm(model)
    totals = {s: {m: 0.0 for m in MERGES} for s in STRATEGIES}
    passes = dict.fromkeys(STRATEGIES, 0)
    for start in range(0, len(images), chunk):
        part = labels[start : start + chunk]
        accuracy, passed = _scores(fast, images[start : start + chunk], part, normalize)
        for s, by_merge in accuracy.items():
            passes[s] += passed[s]
            for merge, value in by_merge.items():
                totals[s][merge] += value * len(part)
        if progress:
            done = min(len(images), start + chunk)
            progress(done / len(images), f"{done:,} of {len(images):,} test images")
    return {
        "scoring": SCORING,
        "strategies": list(STRATEGIES),
        "merges": list(MERGES),
        "accuracy": {s: {m: v / len(images) for m, v in totals[s].items()} for s in STRATEGIES},
        "ms_per_image": cost_per_image(fast, images, normalize),
        "views": {s: len(strategy.views) for s, strategy in STRATEGIES.items()},
        "passes_per_image": {s: passes[s] / len(images) for s in STRATEGIES},
        "unsure_below": {s: t.unsure_below for s, t in STRATEGIES.items() if t.unsure_below is not None},
    }


def evaluate_corruptions(
    model, images: torch.Tensor, labels: torch.Tensor, normalize, progress: Progress | None = None
) -> dict:
    """Accuracy of every strategy x merge under every corruption and
    severity, and clean, on the same images."""
    fast, _ = fold_batchnorm(model)
    cases = [("clean", 0, None)] + [
        (kind, i + 1, level) for kind, levels in CORRUPTIONS.items() for i, level in enumerate(levels)
    ]
    results = {}
    for done, (kind, severity, level) in enumerate(cases, start=1):
        corrupted = images if level is None else corrupt(images, kind, level, seed=severity)
        results[f"{kind} {severity}" if severity else "clean"] = _scores(fast, corrupted, labels, normalize)[0]
        if progress:
            progress(done / len(cases), f"{kind} {severity or ''}".strip())
    return {
        "scoring": SCORING,
        "strategies": list(STRATEGIES),
        "merges": list(MERGES),
        "corruptions": list(CORRUPTIONS),
        "severities": 3,
        "accuracy": results,
    }
