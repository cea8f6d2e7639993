"""The sample images shipped in assets/samples: CIFAR-10 test images named
`<class>_NN.jpg`, and a few real photographs (see their README)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..app_files import ASSETS_DIR
from .sources import decode_to_32

SAMPLES_DIR = ASSETS_DIR / "samples"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_sample_paths() -> list[Path]:
    return sorted((SAMPLES_DIR / "cifar10").glob("*.jpg"))


def photo_paths() -> list[Path]:
    return sorted(
        p for p in (SAMPLES_DIR / "photos").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
    )


def samples_by_name(photos_first: bool = False) -> dict[str, Path]:
    """Every shipped sample by its file name, the CIFAR-10 test images
    first unless `photos_first`."""
    groups = (photo_paths(), cifar_sample_paths()) if photos_first else (cifar_sample_paths(), photo_paths())
    return {path.name: path for group in groups for path in group}


def class_in_name(name: str, classes: Sequence[str]) -> str | None:
    """The class a file's name starts with, as the samples are named
    (`cat_03.jpg`), or None: "cat_03.jpg" -> "cat" when "cat" is a class."""
    stem = name.rsplit("_", 1)[0]
    return stem if stem in classes else None


def is_cifar_sample(path: Path) -> bool:
    """One of the shipped CIFAR-10 test images, whose name gives its true class."""
    return path.parent == SAMPLES_DIR / "cifar10"


@functools.lru_cache(maxsize=1)
def cifar_samples() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """uint8 [N, 3, 32, 32] images, int64 [N] labels (CIFAR-10's class
    order), and the file names; decoded once per process."""
    paths = cifar_sample_paths()
    images = np.stack([decode_to_32(p) for p in paths]).transpose(0, 3, 1, 2)  # [N, 3, 32, 32]
    labels = [CIFAR10_CLASSES.index(p.stem.rsplit("_", 1)[0]) for p in paths]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.tensor(labels), [p.name for p in paths]
