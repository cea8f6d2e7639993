"""Captum attributions of CIFAR nets, returned as plain arrays, with two
checks of how far each explanation can be trusted.

Every function takes a model in eval mode and normalised images
[B, 3, H, W] (what the model sees) and returns numpy arrays of the input's
shape. Our models reuse no module and run nothing in place, so DeepLift's
rules apply to every ReLU and to the residual addition.

Faithfulness:
- deletion curve (Petsiuk et al. 2018): remove pixels in order of
  attribution, most important first, and track the target's probability;
  its area (mean over the curve, 0..1) is lower when the map found what the
  model really uses;
- model randomisation (Adebayo et al. 2018): randomise the weights from the
  top layer down, stage by stage, and measure how much the map still
  resembles the original; a map that barely changes does not explain the
  model.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import (
    DeepLift,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from ..errors import ConfigError
from ..progress import Progress

METHODS = {
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "smoothgrad": "SmoothGrad",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
    "deeplift": "DeepLift",
}
DEFAULT_METHODS = ("integrated_gradients", "saliency", "smoothgrad", "gradcam")
BASELINES = ("black", "blurred", "mean")
IG_STEPS = 50
SMOOTHGRAD_SAMPLES = 10
SMOOTHGRAD_STDEV = 0.15  # of the normalised input's range, as Smilkov et al. suggest (10-20%)


def baseline_for(images: torch.Tensor, kind: str, black: torch.Tensor) -> torch.Tensor:
    """The reference input of IG and DeepLift, in the model's normalised space.
    black: the normalised value of a black pixel [1, 3, 1, 1] (it depends on
    the training data's mean and std); mean: the training data's mean pixel,
    0 after normalising; blurred: the image under a heavy Gaussian blur."""
    if kind == "black":
        return black.expand_as(images).clone()
    if kind == "mean":
        return torch.zeros_like(images)
    if kind == "blurred":
        return blurred(images)
    raise ConfigError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")


def last_stage(model: nn.Module) -> nn.Module:
    """Grad-CAM's layer: the last stage's output (8x8 for 32x32 inputs)."""
    return model.stages[-1]


def _attribute(
    model: nn.Module, images: torch.Tensor, target: torch.Tensor, method: str, baseline: torch.Tensor
) -> torch.Tensor:
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(
            images, baselines=baseline, target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS
        )
    if method == "saliency":
        return Saliency(model).attribute(images, target=target, abs=False)
    if method == "smoothgrad":
        stdev = SMOOTHGRAD_STDEV * float(images.max() - images.min())
        return NoiseTunnel(Saliency(model)).attribute(
            images,
            nt_type="smoothgrad",
            nt_samples=SMOOTHGRAD_SAMPLES,
            nt_samples_batch_size=SMOOTHGRAD_SAMPLES,
            stdevs=stdev,
            target=target,
            abs=False,
        )
    if method == "gradcam":
        cam = LayerGradCam(model, last_stage(model)).attribute(
            images, target=target, relu_attributions=True
        )  # [B, 1, 8, 8]
        cam = LayerAttribution.interpolate(cam, tuple(images.shape[-2:]), interpolate_mode="bilinear")
        return cam.expand_as(images) / images.shape[1]  # spread over the channels; their sum is the map
    if method == "occlusion":
        return Occlusion(model).attribute(
            images,
            sliding_window_shapes=(3, 4, 4),
            strides=(3, 2, 2),
            baselines=0.0,
            target=target,
            perturbations_per_eval=128,
        )
    if method == "deeplift":
        return DeepLift(model).attribute(images, baselines=baseline, target=target)
    raise ConfigError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")


@dataclass
class Attribution:
    method: str
    values: np.ndarray  # [B, 3, H, W], the input's shape
    seconds: float

    def pixel_map(self, signed: bool = True) -> np.ndarray:
        """[B, H, W]: the channels summed (signed) or their absolute values summed."""
        return self.values.sum(1) if signed else np.abs(self.values).sum(1)


def attribute(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor | Sequence[int] | int,
    method: str,
    baseline: str = "black",
    black: torch.Tensor | None = None,
) -> Attribution:
    """One method's attributions for each image towards its target class."""
    model = model.eval()
    target = torch.as_tensor(target, device=images.device).reshape(-1).expand(len(images))
    black = black if black is not None else torch.zeros(1, images.shape[1], 1, 1, device=images.device)
    start = time.perf_counter()
    with warnings.catch_warnings():  # Captum's notes on hooks and input gradients, not for users
        warnings.simplefilter("ignore", UserWarning)
        values = _attribute(model, images, target, method, baseline_for(images, baseline, black))
    return Attribution(method, values.detach().float().cpu().numpy(), time.perf_counter() - start)


# --- faithfulness: deletion -------------------------------------------------------
# Petsiuk et al.'s deletion curve: remove the pixels a map ranks first and
# watch the target's probability fall. Removing means taking the pixel of a
# heavily blurred copy of the image (every channel): the information goes,
# but no flat grey squares appear that the net never saw in training (the
# out-of-distribution artefact ROAD, Rong et al. 2022, warns of). Every curve
# uses this one fill, and a random order of the same pixels is the baseline
# a map must beat.

DELETION_STEPS = 32
# The random baseline averages this many orders. One order's area varies a
# lot with where it happens to remove the evidence: on one shipped image the
# mean of 4 orders ranged 0.30-0.40 over seeds, as wide as the gaps the page
# reads; 32 bring its standard error to about 0.01-0.02 (it is drawn as a band).
RANDOM_ORDERS = 32
DELETION_BATCH = 256  # images per forward pass: larger batches ran 2.5x slower per image on a 2-core CPU
RANKED_BY_MAGNITUDE = ("saliency", "smoothgrad")  # a gradient's sign is only a direction


def blurred(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] under the heavy Gaussian blur of the 'blurred' baseline."""
    return gaussian_blur(images, kernel_size=[11, 11], sigma=[5.0, 5.0])


def deletion_ranking(attribution: Attribution) -> np.ndarray:
    """[B, H, W]: the order in which deletion removes pixels, highest
    first. Saliency and SmoothGrad by magnitude, as the literature ranks
    them; the others by signed value, evidence for the target first."""
    return attribution.pixel_map(signed=attribution.method not in RANKED_BY_MAGNITUDE)


@dataclass
class DeletionCurve:
    fractions: list[float]  # share of pixels removed
    probability: list[float]  # of the target class
    area: float  # mean probability over the curve: lower is more faithful
    # the random baseline's own noise: the standard error of its mean over
    # the orders, at each step and of the area (None for a map's curve)
    spread: list[float] | None = None
    area_se: float | None = None


def _area(probability: list[float], fractions: list[float]) -> float:
    trapezoid = np.trapezoid if hasattr(np, "trapezoid") else np.trapz
    return float(trapezoid(probability, fractions))


@torch.inference_mode()
def _deletion_probabilities(model: nn.Module, image: torch.Tensor, target: int, orders: torch.Tensor, steps: int):
    """The target's probability as each order [K, H*W] removes pixels in
    `steps` equal chunks, every order and step in one batch: [K, S+1]."""
    channels, height, width = image.shape
    fill = blurred(image[None]).reshape(channels, -1)
    counts = [round(i * height * width / steps) for i in range(steps + 1)]
    batch = image.reshape(1, channels, -1).repeat(len(orders) * (steps + 1), 1, 1)  # [K*(S+1), C, H*W]
    for k, order in enumerate(orders):
        for row, count in enumerate(counts):
            removed = order[:count]
            batch[k * (steps + 1) + row][:, removed] = fill[:, removed]
    images = batch.reshape(-1, channels, height, width)
    model = model.eval()
    logits = torch.cat([model(images[i : i + DELETION_BATCH]).float() for i in range(0, len(images), DELETION_BATCH)])
    probs = F.softmax(logits, dim=1)[:, target].reshape(len(orders), steps + 1)
    return [c / (height * width) for c in counts], probs


def deletion_curve(
    model: nn.Module, image: torch.Tensor, target: int, ranking: np.ndarray, steps: int = DELETION_STEPS
) -> DeletionCurve:
    """Remove pixels in descending order of `ranking` [H, W] (see
    deletion_ranking). image: [3, H, W] normalised."""
    order = torch.from_numpy(np.argsort(-ranking.reshape(-1), kind="stable").copy()).to(image.device)
    fractions, probs = _deletion_probabilities(model, image, target, order[None], steps)
    probability = probs[0].cpu().tolist()
    return DeletionCurve(fractions, probability, _area(probability, fractions))


def random_deletion_curve(
    model: nn.Module, image: torch.Tensor, target: int, seed: int = 0, steps: int = DELETION_STEPS
) -> DeletionCurve:
    """The baseline: pixels removed in random orders (RANDOM_ORDERS of
    them, seeded), their probabilities averaged, with the standard error of
    that mean at each step and of its area."""
    pixels = image.shape[1] * image.shape[2]
    gen = torch.Generator().manual_seed(seed)
    orders = torch.stack([torch.randperm(pixels, generator=gen) for _ in range(RANDOM_ORDERS)]).to(image.device)
    fractions, probs = _deletion_probabilities(model, image, target, orders, steps)
    per_order = probs.double().cpu().numpy()  # [K, S+1]
    root_k = len(orders) ** 0.5
    areas = [_area(list(row), fractions) for row in per_order]
    probability = per_order.mean(0).tolist()
    return DeletionCurve(
        fractions,
        probability,
        _area(probability, fractions),
        spread=(per_order.std(0, ddof=1) / root_k).tolist(),
        area_se=float(np.std(areas, ddof=1) / root_k),
    )


# --- faithfulness: model randomisation -----------------------------------------------


def randomisation_cascade(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Groups of layers to randomise, top first: the classifier, then each
    stage from the last, then the stem (Adebayo et al.'s cascading test,
    stage by stage)."""
    return (
        [("classifier", [model.linear])]
        + [(f"stage {i}", [model.stages[i - 1]]) for i in range(len(model.stages), 0, -1)]
        + [("stem", [model.conv1, model.bn1])]
    )


def _reinitialise(modules: list[nn.Module], gen: torch.Generator) -> None:
    """Fresh random weights, as a newly built net has them, and fresh BN
    statistics too (running mean 0, variance 1): random weights behind the
    trained statistics make logits thousands of times too large, a broken
    net rather than a random one."""
    with torch.no_grad():
        for root in modules:
            for module in root.modules():
                if isinstance(module, nn.Conv2d):
                    fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
                elif isinstance(module, nn.Linear):
                    bound = 1 / module.in_features**0.5
                    module.weight.copy_((torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound)
                    module.bias.zero_()
                elif isinstance(module, nn.BatchNorm2d):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                    module.reset_running_stats()


def randomised_cascade(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """A copy of the model randomised from the top, one more group of
    layers at each step: (what was randomised last, the copy so far)."""
    work = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(seed)
    for name, modules in randomisation_cascade(work):
        _reinitialise(modules, gen)
        yield name, work


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]  # where each run of equal values begins
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps, ties given their average
    rank; None (undefined) when either map is constant, as an all-zero
    Grad-CAM map is: it ranks nothing."""
    ra = _average_ranks(a.reshape(-1).astype(np.float64))
    rb = _average_ranks(b.reshape(-1).astype(np.float64))
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator else None


@dataclass
class SanityCheck:
    method: str
    steps: list[str]  # what had been randomised, cumulatively
    # rank correlation of |map| with the trained model's |map|; None where a
    # map is constant (undefined)
    similarity: list[float | None]
    flagged: bool  # the map still resembles the original after randomising everything

    FLAG_AT = 0.5


def sanity_check(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    method: str,
    baseline: str = "black",
    black: torch.Tensor | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SanityCheck:
    """Randomise the model from the top, stage by stage, and compare each
    map with the trained model's map (absolute values, rank correlation)."""
    batch = image.unsqueeze(0)
    original = attribute(model, batch, target, method, baseline, black).pixel_map(signed=False)[0]
    steps, similarity = [], []
    total = len(randomisation_cascade(model))
    for done, (name, randomised_model) in enumerate(randomised_cascade(model, seed), start=1):
        randomised = attribute(randomised_model, batch, target, method, baseline, black).pixel_map(signed=False)[0]
        steps.append(f"+ {name}" if steps else name)
        similarity.append(rank_correlation(original, randomised))
        if progress:
            progress(done / total, f"{METHODS[method]}: {name} randomised")
    last = similarity[-1]
    return SanityCheck(method, steps, similarity, flagged=last is not None and last >= SanityCheck.FLAG_AT)


# --- drawing support: maps onto images -----------------------------------------------

# Anchor colours (RGB 0..1) of the two colour scales: signed maps run blue
# (against the target) to red (for it); absolute maps run to yellow.
SIGNED_COLOURS = ((-1.0, (0.13, 0.40, 0.67)), (0.0, (1.0, 1.0, 1.0)), (1.0, (0.70, 0.09, 0.17)))
ABSOLUTE_COLOURS = ((0.0, (0.0, 0.0, 0.0)), (0.5, (0.85, 0.25, 0.15)), (1.0, (1.0, 0.95, 0.3)))


def _colour(values: np.ndarray, anchors) -> np.ndarray:
    points = [a for a, _ in anchors]
    return np.stack([np.interp(values, points, [c[i] for _, c in anchors]) for i in range(3)], axis=-1)


def overlay(image: np.ndarray, pixel_map: np.ndarray, scale: float, signed: bool, upscale: int = 4) -> np.ndarray:
    """uint8 [H*upscale, W*upscale, 3]: the map in colour over a greyed copy
    of the image (uint8 [3, H, W]); each pixel's colour is as strong as
    |value| / scale, so a column of maps shares one scale."""
    grey = image.astype(np.float64).mean(0, keepdims=True).repeat(3, 0).transpose(1, 2, 0) / 255.0  # [H, W, 3]
    v = np.clip(pixel_map / max(scale, 1e-12), -1.0 if signed else 0.0, 1.0)
    colour = _colour(v, SIGNED_COLOURS if signed else ABSOLUTE_COLOURS)
    strength = np.abs(v)[..., None]
    blended = (1 - strength) * (0.35 + 0.5 * grey) + strength * colour
    out = np.round(blended * 255).astype(np.uint8)
    return out.repeat(upscale, 0).repeat(upscale, 1)


# --- one image, one model, several methods ---------------------------------------------


@dataclass
class Explanation:
    model: str
    probabilities: np.ndarray  # [classes]
    target: int
    attributions: dict[str, Attribution]
    deletion: dict[str, DeletionCurve]
    random_deletion: DeletionCurve  # the baseline each method's curve must beat


def resolve_target(which_class: str | int, probabilities: np.ndarray, true_label: int | None) -> int:
    """'predicted', 'true' (when the label is known) or a class index."""
    if which_class == "predicted":
        return int(np.argmax(probabilities))
    if which_class == "true":
        if true_label is None:
            raise ConfigError("this image has no known label: explain the predicted class or pick one")
        return int(true_label)
    return int(which_class)


def explain(
    loaded,
    image: np.ndarray,
    methods: Sequence[str],
    which_class: str | int = "predicted",
    true_label: int | None = None,
    baseline: str = "black",
) -> Explanation:
    """Every method's map of one uint8 image [3, H, W] for one LoadedModel
    (inference.py), with its deletion curve."""
    batch = loaded.inputs(torch.from_numpy(np.ascontiguousarray(image))[None])
    probs = loaded.probabilities(image[None])[0]
    target = resolve_target(which_class, probs, true_label)
    black = loaded.black()
    attributions, deletion = {}, {}
    for method in methods:
        result = attribute(loaded.model, batch, target, method, baseline, black)
        attributions[method] = result
        deletion[method] = deletion_curve(loaded.model, batch[0], target, deletion_ranking(result)[0])
    random = random_deletion_curve(loaded.model, batch[0], target)
    return Explanation(loaded.name, probs, target, attributions, deletion, random)
