"""Data: CIFAR-10 or an image folder, decoded once into one uint8 tensor.

A source is decoded once into `uint8 [N, 3, 32, 32]` images and `int64 [N]`
labels per split, and cached on disk under a key that changes with the
source. Training keeps a whole split on the training device and draws index
batches; crop and flip run on the whole batch as tensor ops. No PIL, no
per-sample Python and no DataLoader in the training loop (the lessons of
the fast CIFAR-10 training records, which keep the data set on the GPU).

Sources:
- "cifar10": torchvision's CIFAR-10, downloaded on first use into the cache.
- "synthetic": a small generated set (see synthetic.py), for tests and demos.
- any folder with train/ and test/ (or val/) subfolders of class folders.
  Images that are not 32x32 are centre-cropped to a square and resized to
  32x32 with bicubic filtering (PIL's ImageOps.fit): the model sees the
  middle of a photo, undistorted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, DiskFullError
from ..progress import CountProgress
from ..storage import atomic_write, default_cache_dir
from .dataset import IMAGE_SIZE, Dataset, Split, channel_stats
from .images import too_many_pixels
from .synthetic import SYNTHETIC_SIZES, make_synthetic

CROP_PAD = 4  # paper: pad 4 pixels, random 32x32 crop, random flip
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TEST_SPLIT_NAMES = ("test", "val")
# Bump when decoding changes, so stale caches are never read.
DECODE_VERSION = 1


def load_dataset(source: str, cache_dir: str | Path | None = None, progress: CountProgress | None = None) -> Dataset:
    """Load a source by name or folder path; decode on first use, then cache."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    source = str(source).strip()
    if source == "synthetic":
        return make_synthetic()
    if source == "cifar10":
        return _load_cifar10(cache_dir, progress)
    return _load_folder(Path(source).expanduser(), source, cache_dir, progress)


def count_images(source: str) -> tuple[int, int]:
    """(train, test) image counts without decoding, for time estimates."""
    source = str(source).strip()
    if source == "cifar10":
        return 50_000, 10_000
    if source == "synthetic":
        return SYNTHETIC_SIZES
    root = Path(source).expanduser()
    counts = []
    for names in (("train",), TEST_SPLIT_NAMES):
        split = next((root / n for n in names if (root / n).is_dir()), None)
        if split is None:
            raise DataError(f"{root} needs train/ and test/ (or val/) subfolders of class folders")
        counts.append(sum(1 for p in split.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES))
    return counts[0], counts[1]


# --- the disk cache ---------------------------------------------------------


def _cache_path(cache_dir: Path, key_parts: list[str]) -> Path:
    digest = hashlib.sha256("\n".join([f"v{DECODE_VERSION}", *key_parts]).encode()).hexdigest()[:24]
    return cache_dir / "datasets" / f"{digest}.pt"


def _read_cache(path: Path, source: str) -> Dataset | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=True)
        return Dataset(
            train=Split(blob["train_images"], blob["train_labels"]),
            test=Split(blob["test_images"], blob["test_labels"]),
            classes=list(blob["classes"]),
            source=source,
            mean=tuple(blob["mean"]),
            std=tuple(blob["std"]),
        )
    except Exception:  # a damaged cache is rebuilt, never fatal
        return None


def _write_cache(path: Path, data: Dataset) -> None:
    blob = {
        "train_images": data.train.images,
        "train_labels": data.train.labels,
        "test_images": data.test.images,
        "test_labels": data.test.labels,
        "classes": list(data.classes),
        "mean": list(data.mean),
        "std": list(data.std),
    }
    try:
        atomic_write(path, lambda handle: torch.save(blob, handle))
    except (OSError, RuntimeError, DiskFullError):
        pass  # a read-only or full cache only costs speed: the data set is in memory


def _finish(train: Split, test: Split, classes: list[str], source: str) -> Dataset:
    mean, std = channel_stats(train.images)
    return Dataset(train, test, classes, source, mean, std)


# --- CIFAR-10 through torchvision ------------------------------------------

CIFAR10_FOLDER = "cifar-10-batches-py"


def _load_cifar10(cache_dir: Path, progress: CountProgress | None) -> Dataset:
    root = cache_dir / "cifar10"
    batches = root / CIFAR10_FOLDER
    key = ["cifar10", *_stat_lines(batches)] if batches.is_dir() else None
    if key:
        cached = _read_cache(_cache_path(cache_dir, key), "cifar10")
        if cached is not None:
            return cached
    import torchvision

    try:
        if progress:
            progress(0, 2, "checking or downloading CIFAR-10")
        splits = [torchvision.datasets.CIFAR10(str(root), train=t, download=True) for t in (True, False)]
    except Exception as err:  # URLError, timeouts, bad archives: all say the same
        raise DataError(
            f"Could not get CIFAR-10 ({type(err).__name__}: {err}). If this machine is offline, "
            f"put a copy in {root}: the archive cifar-10-python.tar.gz or its extracted folder "
            f"{CIFAR10_FOLDER}. Or use an image folder with train/ and test/ class folders "
            "as the data source instead."
        ) from err
    train, test = (
        Split(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.int64))
        for ds in splits
    )
    data = _finish(train, test, list(splits[0].classes), "cifar10")
    _write_cache(_cache_path(cache_dir, ["cifar10", *_stat_lines(batches)]), data)
    return data


# --- image folders ----------------------------------------------------------


def _stat_lines(folder: Path) -> list[str]:
    """One line per file below folder: relative path, size, mtime (cache key)."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError as err:  # a link to nothing, a link loop, no permission
                raise DataError(
                    f"{path} cannot be read ({err.strerror}): a broken link? Remove it or point it at an image."
                ) from err
            lines.append(f"{path.relative_to(folder)}\t{st.st_size}\t{st.st_mtime_ns}")
    return lines


def _class_folders(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_images(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(label)
    return paths, labels


def decode_to_32(path: Path) -> np.ndarray:
    """One image file -> uint8 [32, 32, 3]; centre crop + bicubic resize if
    needed. Images over the uploads' pixel limit are refused from their
    header, unread (a data folder is as untrusted as an upload)."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:  # (Pillow refuses far larger images in open() itself)
        refused = too_many_pixels(path.name, *img.size)
        if refused:
            raise DataError(refused)
        img = ImageOps.exif_transpose(img).convert("RGB")
        if img.size != (IMAGE_SIZE, IMAGE_SIZE):
            img = ImageOps.fit(img, (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


def _decode_split(paths: list[Path], labels: list[int], what: str, progress: CountProgress | None) -> Split:
    images = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    bad: list[str] = []

    def decode(i: int) -> None:
        try:
            images[i] = decode_to_32(paths[i])
        except Exception as err:
            bad.append(f"{paths[i]} ({type(err).__name__}: {err})")

    # PIL releases the GIL while decoding, so threads overlap file reads and decodes.
    step = 1000
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        for start in range(0, len(paths), step):
            list(pool.map(decode, range(start, min(start + step, len(paths)))))
            if progress:
                progress(min(start + step, len(paths)), len(paths), what)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise DataError(f"{len(bad)} image(s) could not be decoded: {'; '.join(bad[:3])}{more}")
    return Split(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels, dtype=torch.int64))


def _load_folder(root: Path, source: str, cache_dir: Path, progress: CountProgress | None) -> Dataset:
    if not root.is_dir():
        raise DataError(
            f"Data source {source!r} is neither 'cifar10' nor an existing folder. "
            "Give a folder with train/ and test/ (or val/) subfolders, one folder per class."
        )
    train_dir = root / "train"
    test_dir = next((root / n for n in TEST_SPLIT_NAMES if (root / n).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise DataError(
            f"{root} needs a train/ and a test/ (or val/) subfolder, each with one folder per class "
            f"(found: {', '.join(sorted(p.name for p in root.iterdir())) or 'nothing'})."
        )
    classes = _class_folders(train_dir)
    if len(classes) < 2:
        raise DataError(f"{train_dir} needs at least two class folders; it has {len(classes)}.")
    unknown = sorted(set(_class_folders(test_dir)) - set(classes))
    if unknown:
        raise DataError(f"{test_dir} has class folders that train/ lacks: {', '.join(unknown)}.")
    resolved = root.resolve()
    key_parts = [f"folder:{resolved}", *_stat_lines(train_dir), "--", *_stat_lines(test_dir)]
    cache = _cache_path(cache_dir, key_parts)
    cached = _read_cache(cache, source)
    if cached is not None:
        return cached
    splits = []
    for split_dir in (train_dir, test_dir):
        paths, labels = _list_images(split_dir, classes)
        if not paths:
            raise DataError(f"{split_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        splits.append(_decode_split(paths, labels, f"decoding {split_dir.name}/", progress))
    data = _finish(splits[0], splits[1], classes, source)
    _write_cache(cache, data)
    return data


# --- subsets, batches, augmentation ------------------------------------------


def stratified_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of n examples with class proportions kept, deterministic in seed."""
    total = labels.shape[0]
    if n >= total:
        return torch.arange(total)
    if n < 1:
        raise DataError(f"train subset must be at least 1 image, not {n}")
    gen = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(labels, return_counts=True)
    quotas = (counts.double() * n / total).floor().long()
    # hand the remainder to the classes with the largest fractional parts
    remainder = n - int(quotas.sum())
    fractions = counts.double() * n / total - quotas.double()
    quotas[torch.argsort(fractions, descending=True)[:remainder]] += 1
    chosen = []
    for cls, quota in zip(classes.tolist(), quotas.tolist()):
        members = torch.nonzero(labels == cls).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:quota]])
    return torch.sort(torch.cat(chosen)).values


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The RNG for one epoch's order and augmentation: resuming at an epoch
    boundary then needs no saved data-RNG state."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batches_per_epoch(n: int, batch_size: int, shards: int = 1) -> int:
    # A last batch too small for BatchNorm (two images in each of its shards,
    # one per process under torchrun) is dropped.
    return n // batch_size + (n % batch_size >= 2 * shards)


def shuffled_batches(n: int, batch_size: int, gen: torch.Generator, shards: int = 1) -> Iterator[torch.Tensor]:
    """Index batches over a random order (see batches_per_epoch)."""
    order = torch.randperm(n, generator=gen)
    for i in range(batches_per_epoch(n, batch_size, shards)):
        yield order[i * batch_size : (i + 1) * batch_size]


def random_crop_flip(images: torch.Tensor, gen: torch.Generator, pad: int = CROP_PAD) -> torch.Tensor:
    """Zero-pad by `pad`, take a random 32x32 crop and flip half: one gather.

    images: [B, C, H, W] of any dtype, on any device. The offsets and flips
    come from a CPU generator, so a seed gives the same batch on every device.
    """
    b, _, h, w = images.shape
    return apply_crop_flip(images, crop_flip_offsets(b, h, w, gen, pad), pad)


def crop_flip_offsets(
    b: int, h: int, w: int, gen: torch.Generator, pad: int = CROP_PAD
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows and columns random_crop_flip takes ([B, H], [B, W], on the
    CPU): drawn once, they crop the same batch alike on several devices."""
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = dy[:, None] + torch.arange(h)  # [B, H] rows into the padded image
    cols = dx[:, None] + torch.arange(w)  # [B, W]
    return rows, torch.where(flip[:, None], cols.flip(1), cols)  # a flip is reversed columns


def apply_crop_flip(images: torch.Tensor, offsets: tuple[torch.Tensor, torch.Tensor], pad: int = CROP_PAD):
    """Crop and flip a batch where crop_flip_offsets say: one gather."""
    b, c, _, _ = images.shape
    rows, cols = offsets
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    return padded[
        torch.arange(b, device=device)[:, None, None, None],
        torch.arange(c, device=device)[None, :, None, None],
        rows.to(device, non_blocking=True)[:, None, :, None],  # (from pinned memory, the engine's, on CUDA)
        cols.to(device, non_blocking=True)[:, None, None, :],
    ]


class Normalizer:
    """uint8 [B, 3, H, W] -> float, (x / 255 - mean) / std, per channel."""

    def __init__(self, mean, std, device: torch.device | str = "cpu", channels_last: bool = False):
        self.scale = (1.0 / (255.0 * torch.tensor(std, dtype=torch.float32))).view(1, 3, 1, 1).to(device)
        self.shift = (
            (torch.tensor(mean, dtype=torch.float32) / torch.tensor(std, dtype=torch.float32))
            .view(1, 3, 1, 1)
            .to(device)
        )
        self.channels_last = channels_last

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() * self.scale - self.shift
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
