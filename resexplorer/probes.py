"""Looking inside a net with hooks: layer responses and residual branches.

Plain functions over a model and a batch of (normalised) images, returning
plain lists. The training engine calls `epoch_probe` at every epoch end, so
runs carry how these numbers evolve.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .models import BasicBlock, CifarNet


def response_layers(model: CifarNet) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BN after every 3x3 conv, in forward order: the stem, then each
    block's two layers. Their outputs are 'after BN and before nonlinearity
    (ReLU/addition)', what the paper's Fig. 7 measures."""
    layers = [("stem", model.bn1)]
    for index, block in enumerate(model.blocks()):
        layers += [(f"block{index + 1}.bn1", block.bn1), (f"block{index + 1}.bn2", block.bn2)]
    return layers


@torch.no_grad()
def layer_response_stds(model: CifarNet, images: torch.Tensor) -> list[float]:
    """Std of each 3x3 layer's output over the batch (Fig. 7), in layer order."""
    stds: list[float] = []
    handles = [bn.register_forward_hook(lambda m, i, out: stds.append(float(out.float().std()))) for _, bn in response_layers(model)]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
    return stds


def _ratio(numerator: torch.Tensor, x: torch.Tensor) -> float:
    """Mean over images of ||numerator|| / ||x||."""
    num = numerator.float().flatten(1).norm(dim=1)  # [B]
    den = x.float().flatten(1).norm(dim=1).clamp_min(1e-12)
    return float((num / den).mean())


@torch.no_grad()
def residual_ratios(model: CifarNet, images: torch.Tensor) -> list[float | None]:
    """Per block, in forward order: ||F(x)|| / ||x|| for a residual block
    (F the branch before the addition, x the block's input). For a plain
    block, the closest honest analogue ||block(x) - x|| / ||x||, defined only
    where the block keeps the shape (None elsewhere)."""
    ratios: list[float | None] = []

    def hook(block: BasicBlock, inputs, output):
        x = inputs[0]
        if block.has_shortcut:
            ratios.append(_ratio(block.residual(x), x))
        elif output.shape == x.shape:
            ratios.append(_ratio(output - x, x))
        else:
            ratios.append(None)

    handles = [block.register_forward_hook(hook) for block in model.blocks()]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
    return ratios


def stage_means(values: list[float | None], blocks_per_stage: int) -> list[float | None]:
    """Mean of the defined values of each stage's blocks."""
    means = []
    for start in range(0, len(values), blocks_per_stage):
        defined = [v for v in values[start : start + blocks_per_stage] if v is not None]
        means.append(sum(defined) / len(defined) if defined else None)
    return means


def epoch_probe(images: torch.Tensor) -> Callable[[nn.Module, int], dict]:
    """A training probe over a fixed batch of normalised images: response
    stds, residual ratios per block and per stage, at every epoch end."""

    def probe(model: nn.Module, epoch: int) -> dict:
        batch = images.to(next(model.parameters()).device)
        ratios = residual_ratios(model, batch)
        return {
            "response_std": layer_response_stds(model, batch),
            "residual_ratio": ratios,
            "residual_ratio_by_stage": stage_means(ratios, model.config.blocks_per_stage),
        }

    return probe
