"""Two-dimensional toy data for the Playground: two classes of points in
the plane, as TensorFlow Playground draws them.

Every set is drawn from a seed, so a link reproduces it point for point;
the training and test points are two draws of the same distribution.
Coordinates lie roughly within [-1, 1] (SPAN), noise included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SPAN = 1.2  # the plane the Playground draws: [-SPAN, SPAN] on both axes
N_TRAIN = 400
N_TEST = 400


def _spirals(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals, 1.75 turns each (the hardest of the sets)."""
    labels = torch.arange(n) % 2
    t = torch.rand(n, generator=gen) * 1.75 * 2 * math.pi  # angle along the arm
    radius = 0.15 + 0.85 * t / (1.75 * 2 * math.pi)
    angle = t + math.pi * labels
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1), labels


def _moons(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    points = torch.where(labels[:, None] == 0, upper, lower)
    return (points - torch.tensor([0.5, 0.25])) * 0.8, labels


def _circles(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A disc inside a ring."""
    labels = torch.arange(n) % 2
    radius = torch.where(labels == 0, torch.rand(n, generator=gen) * 0.4, 0.6 + torch.rand(n, generator=gen) * 0.4)
    angle = torch.rand(n, generator=gen) * 2 * math.pi
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1), labels


def _xor(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Opposite quadrants share a class; a margin keeps the axes clear."""
    points = torch.rand(n, 2, generator=gen) * 1.9 - 0.95
    points = points + 0.05 * torch.sign(points)
    return points, ((points[:, 0] > 0) ^ (points[:, 1] > 0)).to(torch.int64)


def _blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in opposite corners."""
    labels = torch.arange(n) % 2
    centres = torch.tensor([[-0.5, -0.5], [0.5, 0.5]])
    return centres[labels] + torch.randn(n, 2, generator=gen) * 0.25, labels


GENERATORS = {"spirals": _spirals, "moons": _moons, "circles": _circles, "xor": _xor, "blobs": _blobs}
CLASSES = ("orange", "blue")  # class 0, class 1: the colours the Playground draws them in


@dataclass(frozen=True)
class Points:
    """Training and test points: float32 [N, 2] coordinates, int64 [N] labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def make_points(kind: str, noise: float = 0.0, seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Points:
    """A data set of GENERATORS by name; `noise` is the standard deviation of
    Gaussian jitter added to every coordinate (0 to about 0.5)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown point set {kind!r}; choose from {', '.join(GENERATORS)}")
    gen = torch.Generator().manual_seed(seed)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        points, labels = GENERATORS[kind](n, gen)
        points = points + noise * torch.randn(n, 2, generator=gen)
        order = torch.randperm(n, generator=gen)  # classes interleaved, not in blocks
        return points[order].float().clamp(-SPAN, SPAN), labels[order].to(torch.int64)

    train_x, train_y = draw(n_train)
    test_x, test_y = draw(n_test)
    return Points(train_x, train_y, test_x, test_y)
