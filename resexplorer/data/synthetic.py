"""A small generated data set: tests and demos that need no download.

Each class is a colour and a stripe orientation/frequency, drawn at a random
phase with noise, so a small net learns it in a few steps but not in zero.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .dataset import IMAGE_SIZE, Dataset, Split, channel_stats

SYNTHETIC_CLASSES = [
    "red-h",
    "green-v",
    "blue-d",
    "yellow-h",
    "cyan-v",
    "magenta-d",
    "grey-h",
    "orange-v",
    "white-d",
    "navy-h",
]


def _make_split(n: int, num_classes: int, gen: torch.Generator) -> Split:
    labels = torch.arange(n) % num_classes  # balanced classes
    labels = labels[torch.randperm(n, generator=gen)]
    hues = torch.linspace(0, 2 * math.pi, num_classes + 1)[:-1]
    colours = torch.stack([torch.cos(hues), torch.cos(hues + 2.1), torch.cos(hues + 4.2)], 1) * 0.35 + 0.5
    angles = (torch.arange(num_classes) % 3).float() * (math.pi / 3)  # 0, 60, 120 degrees
    freqs = 0.5 + (torch.arange(num_classes) % 4).float() * 0.25
    ys, xs = torch.meshgrid(torch.arange(IMAGE_SIZE).float(), torch.arange(IMAGE_SIZE).float(), indexing="ij")
    a, f = angles[labels][:, None, None], freqs[labels][:, None, None]
    phase = torch.rand(n, 1, 1, generator=gen) * 2 * math.pi
    stripes = torch.sin(f * (xs * torch.cos(a) + ys * torch.sin(a)) + phase)  # [N, H, W]
    images = colours[labels][:, :, None, None] * (0.75 + 0.25 * stripes[:, None])  # [N, 3, H, W]
    images = images + 0.08 * torch.randn(images.shape, generator=gen)
    return Split((images.clamp(0, 1) * 255).round().to(torch.uint8), labels.to(torch.int64))


SYNTHETIC_SIZES = (600, 200)  # default train and test images


def make_synthetic(
    n_train: int = SYNTHETIC_SIZES[0], n_test: int = SYNTHETIC_SIZES[1], num_classes: int = 10, seed: int = 0
) -> Dataset:
    """A deterministic Dataset of 32x32 images; same seed, same pixels."""
    if not 2 <= num_classes <= len(SYNTHETIC_CLASSES):
        raise ValueError(f"num_classes must be 2..{len(SYNTHETIC_CLASSES)}")
    gen = torch.Generator().manual_seed(seed)
    train = _make_split(n_train, num_classes, gen)
    test = _make_split(n_test, num_classes, gen)
    mean, std = channel_stats(train.images)
    return Dataset(train, test, SYNTHETIC_CLASSES[:num_classes], "synthetic", mean, std)


def write_image_folder(data: Dataset, root: str | Path, suffix: str = ".png") -> Path:
    """Write a Dataset as root/{train,test}/<class>/<index><suffix>."""
    from PIL import Image

    root = Path(root)
    for split_name, split in (("train", data.train), ("test", data.test)):
        for i, (image, label) in enumerate(zip(split.images, split.labels.tolist())):
            folder = root / split_name / data.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).save(folder / f"{i:05d}{suffix}")
    return root
