"""Looking inside a net with hooks: layer responses, residual branches and
gradient norms.

A residual branch is measured against what it is added to: the branch
ratio ||F(x)|| / ||shortcut(x)||. Where the shortcut is the identity that is
||F(x)|| / ||x||; at a block that changes the shape, the shortcut's output
(subsampled and padded, or projected) has about half the norm of x, so
dividing by ||x|| there would halve the ratio exactly where the branch is
largest. A plain block has no shortcut; its analogue measures its change
against the parameter-free option-A map, A(x) = x where the shape holds,
subsampled and zero-padded where it changes: ||block(x) - A(x)|| / ||A(x)||.

Plain functions over a model and a batch of (normalised) images, returning
plain lists or small dataclasses. The training engine calls `epoch_probe` at
every epoch end, so runs carry how these numbers evolve. Block deletion and
loss landscapes have their own modules (lesion.py, landscape.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import BasicBlock, CifarNet, PadShortcut


def response_layers(model: CifarNet) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BN after every 3x3 conv, in forward order: the stem, then each
    block's two layers. Their outputs are 'after BN and before nonlinearity
    (ReLU/addition)', what the paper's Fig. 7 measures."""
    layers = [("stem", model.bn1)]
    for index, block in enumerate(model.blocks()):
        layers += [(f"block{index + 1}.bn1", block.bn1), (f"block{index + 1}.bn2", block.bn2)]
    return layers


def block_names(model: CifarNet) -> list[str]:
    """'s1.b1' .. 's3.bn': stage and block, 1-based, in forward order."""
    n = model.config.blocks_per_stage
    return [f"s{i // n + 1}.b{i % n + 1}" for i in range(len(model.blocks()))]


@dataclass
class InsideStats:
    """One pass over a set of images: Fig. 7 and the branch ratios."""

    layer_names: list[str]
    response_std: list[float]  # per 3x3 layer, forward order
    block_names: list[str]
    branch_ratio: list[float]  # per block, forward order (module docstring)
    n_images: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@torch.inference_mode()
def inside_stats(model: CifarNet, images: torch.Tensor, batch_size: int = 128) -> InsideStats:
    """Response std per 3x3 layer and the branch ratio per block over many
    images, in one forward pass per chunk. Stds pool every element of every
    image (sums and sums of squares per chunk, in float64); ratios average
    per-image ratios. F(x) is read from bn2's output and shortcut(x) from
    the shortcut's, so nothing is computed twice."""
    layers = response_layers(model)
    blocks = model.blocks()
    sums = torch.zeros(len(layers), dtype=torch.float64)
    squares = torch.zeros(len(layers), dtype=torch.float64)
    elements = [0] * len(layers)
    ratio_sums = [0.0] * len(blocks)
    branch_out: dict[int, torch.Tensor] = {}
    shortcut_out: dict[int, torch.Tensor] = {}
    option_a = {i: PadShortcut(b.conv2.out_channels) for i, b in enumerate(blocks) if not b.has_shortcut}

    def response_hook(index: int):
        def hook(module, inputs, out):
            # no float64 copy of the activations: float32 reductions, summed in float64
            sums[index] += float(out.sum())
            squares[index] += float(torch.linalg.vector_norm(out)) ** 2
            elements[index] += out.numel()

        return hook

    def keep(store: dict, index: int):
        def hook(module, inputs, out):
            store[index] = out

        return hook

    def block_hook(index: int):
        def hook(block: BasicBlock, inputs, output):
            x = inputs[0]
            if block.has_shortcut:
                ratio = _per_image_ratio(branch_out.pop(index), shortcut_out.pop(index))
            else:
                a = x if output.shape == x.shape else option_a[index](x)
                ratio = _per_image_ratio(output - a, a)
            ratio_sums[index] += float(ratio.sum())

        return hook

    handles = [bn.register_forward_hook(response_hook(i)) for i, (_, bn) in enumerate(layers)]
    handles += [b.bn2.register_forward_hook(keep(branch_out, i)) for i, b in enumerate(blocks)]
    handles += [b.shortcut.register_forward_hook(keep(shortcut_out, i)) for i, b in enumerate(blocks) if b.has_shortcut]
    handles += [b.register_forward_hook(block_hook(i)) for i, b in enumerate(blocks)]
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    n = len(images)
    means = sums / torch.tensor(elements, dtype=torch.float64)
    variances = squares / torch.tensor(elements, dtype=torch.float64) - means**2
    return InsideStats(
        layer_names=[name for name, _ in layers],
        response_std=[float(v) for v in variances.clamp_min(0).sqrt()],
        block_names=block_names(model),
        branch_ratio=[total / n for total in ratio_sums],
        n_images=n,
    )


def _per_image_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    # vector_norm over dims, not flatten(1): no copy of channels_last tensors
    num = torch.linalg.vector_norm(numerator.float(), dim=(1, 2, 3))  # [B]
    return num / torch.linalg.vector_norm(denominator.float(), dim=(1, 2, 3)).clamp_min(1e-12)


@dataclass
class GradientNorms:
    """One batch's backward pass: where the gradient goes (section 4.1)."""

    layer_names: list[str]  # every conv and the classifier, forward order
    weight_grad_norm: list[float]
    block_names: list[str]
    input_grad_norm: list[float]  # ||dL/dx|| reaching each block's input, mean per image
    loss: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def gradient_norms(model: CifarNet, images: torch.Tensor, labels: torch.Tensor) -> GradientNorms:
    """Weight-gradient norms per layer and the gradient reaching each block's
    input, for the mean cross-entropy over one batch. BN uses the batch's
    statistics, as in training; the model itself is left untouched (a copy
    runs, so its running averages do not move)."""
    work = copy.deepcopy(model).train()
    work.zero_grad(set_to_none=True)
    input_grads: dict[int, float] = {}

    def block_hook(index: int):
        def hook(block, inputs):
            x = inputs[0]
            if x.requires_grad:
                x.register_hook(lambda grad: input_grads.__setitem__(index, float(grad.flatten(1).norm(dim=1).mean())))

        return hook

    blocks = work.blocks()
    handles = [b.register_forward_pre_hook(block_hook(i)) for i, b in enumerate(blocks)]
    try:
        loss = F.cross_entropy(work(images), labels)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    named = [(name, module) for name, module in work.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    return GradientNorms(
        layer_names=[name for name, _ in named],
        weight_grad_norm=[float(module.weight.grad.norm()) for _, module in named],
        block_names=block_names(work),
        input_grad_norm=[input_grads[i] for i in range(len(blocks))],
        loss=float(loss.detach()),
    )


def stage_means(values: list[float | None], blocks_per_stage: int) -> list[float | None]:
    """Mean of the defined values of each stage's blocks."""
    means = []
    for start in range(0, len(values), blocks_per_stage):
        defined = [v for v in values[start : start + blocks_per_stage] if v is not None]
        means.append(sum(defined) / len(defined) if defined else None)
    return means


def epoch_probe(images: torch.Tensor) -> Callable[[nn.Module, int], dict]:
    """A training probe over a fixed batch of normalised images: response
    stds, branch ratios per block and per stage, at every epoch end. (Runs
    recorded before the branch ratio kept "residual_ratio": ||F(x)|| / ||x||
    at every block; services/inside_series.py reads those too.)"""

    def probe(model: nn.Module, epoch: int) -> dict:
        stats = inside_stats(model, images.to(next(model.parameters()).device))
        return {
            "response_std": stats.response_std,
            "branch_ratio": stats.branch_ratio,
            "branch_ratio_by_stage": stage_means(stats.branch_ratio, model.config.blocks_per_stage),
        }

    return probe
