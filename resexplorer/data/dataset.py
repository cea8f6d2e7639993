"""A data set as the training engine takes it: uint8 images and int64
labels per split, with the class names and the training split's channel
statistics. Every source (sources.py, synthetic.py) makes one of these."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

IMAGE_SIZE = 32


@dataclass
class Split:
    images: torch.Tensor  # uint8 [N, 3, 32, 32]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Dataset:
    train: Split
    test: Split
    classes: list[str]
    source: str  # as given: "cifar10", "synthetic" or a folder path
    mean: tuple[float, float, float] = field(default=(0.5, 0.5, 0.5))  # per channel, in [0, 1]
    std: tuple[float, float, float] = field(default=(0.25, 0.25, 0.25))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        """What a run records about its data (JSON-friendly)."""
        return {
            "source": self.source,
            "classes": list(self.classes),
            "n_train": len(self.train),
            "n_test": len(self.test),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and std in [0, 1] of uint8 [N, 3, H, W], in chunks."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
