"""The sample images shipped in assets/samples: CIFAR-10 test images named
`<class>_NN.jpg`, and a few real photographs (see their README)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .sources import decode_to_32

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "samples"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_sample_paths() -> list[Path]:
    return sorted((SAMPLES_DIR / "cifar10").glob("*.jpg"))


def photo_paths() -> list[Path]:
    return sorted(p for p in (SAMPLES_DIR / "photos").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})


@functools.lru_cache(maxsize=1)
def cifar_samples() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """uint8 [N, 3, 32, 32] images, int64 [N] labels (CIFAR-10's class
    order), and the file names; decoded once per process."""
    paths = cifar_sample_paths()
    images = np.stack([decode_to_32(p) for p in paths]).transpose(0, 3, 1, 2)  # [N, 3, 32, 32]
    labels = [CIFAR10_CLASSES.index(p.stem.rsplit("_", 1)[0]) for p in paths]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.tensor(labels), [p.name for p in paths]
