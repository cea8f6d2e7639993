"""Loss-landscape slices (Li et al. 2018, "Visualizing the loss landscape
of neural nets") and the straight path from initial to final weights.

Random directions are filter-normalised: drawn from N(0, 1), then every
filter (output channel of a conv, row of the classifier) is rescaled to the
norm of the same filter in the trained weights, so the slice is comparable
across nets whose weights have different scales. BN parameters and biases
get zero direction, as in Li et al.; BN keeps its running statistics
(eval mode), so every point is the net a user would deploy.

Since BN is not moved, each slice runs on a copy with every BN folded into
the conv before it (w' = w·s, s = γ/√(var+ε) per channel), moving along the
folded direction d·s: the same function, with no BN layers left to run.

The interpolation θ(α) = (1 - α) θ_init + α θ_final instead mixes two nets
whose running statistics belong to different weights, so along that path BN
uses each chunk's batch statistics, as in training.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..progress import Progress

Direction = dict[str, torch.Tensor]


def filter_normalised_direction(model: nn.Module, seed: int) -> Direction:
    gen = torch.Generator().manual_seed(seed)
    direction = {}
    for name, weight in model.named_parameters():
        if weight.dim() <= 1:  # BN weights and biases, the classifier's bias
            direction[name] = torch.zeros_like(weight)
            continue
        d = torch.randn(weight.shape, generator=gen, dtype=weight.dtype)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)  # [filters]
        w_norm = weight.detach().flatten(1).norm(dim=1)
        direction[name] = d * (w_norm / d_norm).view(-1, *[1] * (weight.dim() - 1))
    return direction


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv, BN) module names wherever a BN directly follows a conv in
    registration order: the stem, both layers of every block, projections."""
    pairs, last_conv = [], None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            last_conv = name
        elif isinstance(module, nn.BatchNorm2d) and last_conv:
            pairs.append((last_conv, name))
            last_conv = None
    return pairs


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def fold_batchnorm(model: nn.Module, direction: Direction | None = None) -> tuple[nn.Module, Direction]:
    """An eval-mode copy with each BN folded into its conv (the same function,
    faster), and a direction carried into the folded weights (zero for the
    folded biases). TTA's test-set sweeps use the copy alone."""
    folded = copy.deepcopy(model).eval()
    moved = {name: d for name, d in (direction or {}).items() if d.any()}
    for conv_name, bn_name in _conv_bn_pairs(model):
        bn = model.get_submodule(bn_name)
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()  # [C_out]
        _replace(folded, conv_name, fuse_conv_bn_eval(folded.get_submodule(conv_name), folded.get_submodule(bn_name)))
        _replace(folded, bn_name, nn.Identity())
        key = f"{conv_name}.weight"
        if key in moved:
            moved[key] = moved[key] * scale.view(-1, 1, 1, 1)
    return folded, {name: moved.get(name, torch.zeros_like(p)) for name, p in folded.named_parameters()}


@torch.inference_mode()
def _loss_and_error(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    loss, wrong = 0.0, 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        y = labels[start : start + batch_size]
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        wrong += int((logits.argmax(1) != y).sum())
    return loss / len(images), wrong / len(images)


@dataclass
class Slice:
    """Loss and error (a fraction) at each point; coords are the step sizes
    along each direction (one list per direction)."""

    axes: list[list[float]]
    loss: list  # nested like the grid: [len(axes[0])] or [len(axes[0])][len(axes[1])]
    error: list

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _grid(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    directions: Sequence[Direction],
    axes: Sequence[Sequence[float]],
    batch_size: int,
    progress: Progress | None,
) -> Slice:
    folded = [fold_batchnorm(model, d) for d in directions]
    work, directions = folded[0][0], [d for _, d in folded]
    params = dict(work.named_parameters())
    origin = {name: p.detach().clone() for name, p in params.items()}
    points = [(a,) for a in axes[0]] if len(axes) == 1 else [(a, b) for a in axes[0] for b in axes[1]]
    losses, errors = [], []
    for done, coords in enumerate(points, start=1):
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(origin[name] + sum(c * d[name] for c, d in zip(coords, directions)))
        loss, error = _loss_and_error(work, images, labels, batch_size)
        losses.append(loss)
        errors.append(error)
        if progress:
            progress(done / len(points), f"point {done} of {len(points)}")
    if len(axes) == 2:
        width = len(axes[1])
        losses = [losses[i : i + width] for i in range(0, len(losses), width)]
        errors = [errors[i : i + width] for i in range(0, len(errors), width)]
    return Slice([list(map(float, a)) for a in axes], losses, errors)


def steps(points: int, span: float) -> list[float]:
    """`points` evenly spaced steps over [-span, span]; 0 is one of them when points is odd."""
    return [round(-span + 2 * span * i / (points - 1), 6) for i in range(points)]


def slice_1d(
    model,
    images,
    labels,
    points: int = 41,
    span: float = 1.0,
    seed: int = 0,
    batch_size: int = 128,
    progress: Progress | None = None,
) -> Slice:
    """Loss along one filter-normalised random direction through the weights."""
    direction = filter_normalised_direction(model, seed)
    return _grid(model, images, labels, [direction], [steps(points, span)], batch_size, progress)


def slice_2d(
    model,
    images,
    labels,
    points: int = 11,
    span: float = 1.0,
    seed: int = 0,
    batch_size: int = 128,
    progress: Progress | None = None,
) -> Slice:
    """Loss over a plane spanned by two filter-normalised random directions."""
    directions = [filter_normalised_direction(model, seed), filter_normalised_direction(model, seed + 1)]
    axis = steps(points, span)
    return _grid(model, images, labels, directions, [axis, axis], batch_size, progress)


def interpolation(
    initial: nn.Module,
    final: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    alphas: Sequence[float],
    batch_size: int = 128,
    progress: Progress | None = None,
) -> Slice:
    """Loss along θ(α) = (1 - α) θ_init + α θ_final (Goodfellow et al.
    2015), BN on batch statistics (see the module docstring)."""
    work = copy.deepcopy(final).eval()
    for module in work.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):  # batch statistics only
            module.track_running_stats = False
            module.running_mean = module.running_var = None
    start = {n: p.detach().clone() for n, p in initial.named_parameters()}
    end = {n: p.detach().clone() for n, p in final.named_parameters()}
    params = dict(work.named_parameters())
    losses, errors = [], []
    for done, alpha in enumerate(alphas, start=1):
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(torch.lerp(start[name], end[name], float(alpha)))
        loss, error = _loss_and_error(work, images, labels, batch_size)
        losses.append(loss)
        errors.append(error)
        if progress:
            progress(done / len(alphas), f"α = {alpha:.2f}")
    return Slice([list(map(float, alphas))], losses, errors)
