"""Deleting blocks from a trained net (Veit et al. 2016, "Residual networks
behave like ensembles of relatively shallow networks").

A deleted block keeps only its shortcut: out = relu(shortcut(x)), the block
with its residual branch F(x) set to zero. A plain block has no shortcut, so
its deletion uses the parameter-free option A one: the identity where
shapes match, subsampling plus zero channels where they change (the page
says so). Since every block input is a ReLU output, relu(x) = x and an
identity shortcut's deletion passes x through unchanged.

Sweeps reuse work: the input of every block is computed once per chunk of
images by the intact net, and a net with blocks deleted starts from the
input of its first deleted block.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..nets.models import BasicBlock, CifarNet, make_shortcut
from ..nets.probes import block_names
from ..progress import Progress


def bypass(block: BasicBlock) -> nn.Module:
    """What is left of a block once it is deleted: its shortcut, then ReLU."""
    shortcut = block.shortcut
    if shortcut is None:  # plain block: the parameter-free option A shortcut
        shortcut = make_shortcut("A", block.conv1.in_channels, block.conv2.out_channels, block.conv1.stride[0])
    return nn.Sequential(shortcut, nn.ReLU())


def uses_pad_for_plain(model: CifarNet) -> list[bool]:
    """Per block: whether deleting it from a plain net needs option A's
    subsample-and-pad (True where the block changes shape)."""
    return [
        not block.has_shortcut and (block.conv1.stride[0] != 1 or block.conv1.in_channels != block.conv2.out_channels)
        for block in model.blocks()
    ]


@torch.inference_mode()
def logits_without(model: CifarNet, images: torch.Tensor, deleted: set[int] | frozenset[int]) -> torch.Tensor:
    """The net's logits with the given blocks deleted: the plain definition,
    one full forward pass (the sweeps below reuse work instead)."""
    x = model.stem(images)
    for index, block in enumerate(model.blocks()):
        x = bypass(block).eval()(x) if index in deleted else block(x)
    return model.forward_head(x)


@torch.inference_mode()
def lesion_errors(
    model: CifarNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    deletions: Sequence[frozenset[int]],
    batch_size: int = 128,
    progress: Progress | None = None,
) -> list[float]:
    """Test error (a fraction) of the net with each set of blocks deleted;
    an empty set is the intact net."""
    model = model.eval()
    blocks = model.blocks()
    bypasses = [bypass(b).eval() for b in blocks]
    mistakes = [0] * len(deletions)
    total = len(images)
    for start in range(0, total, batch_size):
        x = model.stem(images[start : start + batch_size])
        y = labels[start : start + batch_size]
        block_inputs = []  # the intact net's input to every block
        for block in blocks:
            block_inputs.append(x)
            x = block(x)
        intact_wrong = int((model.forward_head(x).argmax(1) != y).sum())
        for index, deleted in enumerate(deletions):
            if not deleted:
                mistakes[index] += intact_wrong
                continue
            first = min(deleted)
            h = block_inputs[first]
            for j in range(first, len(blocks)):
                h = bypasses[j](h) if j in deleted else blocks[j](h)
            mistakes[index] += int((model.forward_head(h).argmax(1) != y).sum())
        if progress:
            progress(min(1.0, (start + batch_size) / total), f"{min(total, start + batch_size):,} of {total:,} images")
    return [m / total for m in mistakes]


@dataclass
class SingleLesion:
    block_names: list[str]
    baseline_error: float
    error_without: list[float]  # test error with only that block deleted
    plain_pad: list[bool]  # deletion used option A's pad (plain nets)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def single_block_lesion(
    model: CifarNet, images: torch.Tensor, labels: torch.Tensor, progress: Progress | None = None
) -> SingleLesion:
    """Delete each block alone (Veit et al., Fig. 3)."""
    n = len(model.blocks())
    errors = lesion_errors(model, images, labels, [frozenset()] + [frozenset({i}) for i in range(n)], progress=progress)
    return SingleLesion(block_names(model), errors[0], errors[1:], uses_pad_for_plain(model))


@dataclass
class RandomLesion:
    ks: list[int]
    mean_error: list[float]  # over the draws, per k
    errors: list[list[float]]  # every draw, per k
    draws: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def random_lesion(
    model: CifarNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    max_k: int,
    draws: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
) -> RandomLesion:
    """Delete k random blocks, k = 0..max_k, `draws` times each, as in Veit
    et al.'s test error against the number of blocks deleted at random; the
    same seed draws the same sets for every model of the same depth, so
    plain and residual nets lose the same blocks."""
    n = len(model.blocks())
    max_k = min(max_k, n)
    rng = random.Random(seed)
    sets = [[frozenset(rng.sample(range(n), k)) for _ in range(draws if k else 1)] for k in range(max_k + 1)]
    flat = [s for per_k in sets for s in per_k]
    errors = lesion_errors(model, images, labels, flat, progress=progress)
    by_k, at = [], 0
    for per_k in sets:
        by_k.append(errors[at : at + len(per_k)])
        at += len(per_k)
    return RandomLesion(list(range(max_k + 1)), [sum(e) / len(e) for e in by_k], by_k, draws)
