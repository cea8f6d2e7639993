"""A real-photo classifier: torchvision's ResNet-50 with its ImageNet
weights (downloaded on first use), tested with the paper's 10 crops.

The CIFAR models know ten small classes at 32x32; a holiday photo deserves
the 1,000 ImageNet classes at 224x224. It is not exactly the paper's
50-layer net: torchvision's ResNet-50 is "v1.5" (the stride of a
downsampling block sits on its 3x3 conv, not its first 1x1), and the
IMAGENET1K_V2 weights come from a modern recipe (long schedule, strong
augmentation), not the paper's. Preprocessing is the weights' own (shorter
side resized to 232, crops of 224), then the paper's "standard 10-crop
testing" (four corners and the centre, and their mirrors), softmax
averaged over the crops.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.models import ResNet50_Weights, resnet50

from ..errors import ResExplorerError
from ..progress import Progress

WEIGHTS = ResNet50_Weights.IMAGENET1K_V2
_PRESET = WEIGHTS.transforms()  # the preprocessing the weights were evaluated with
RESIZE, CROP = _PRESET.resize_size[0], _PRESET.crop_size[0]
MEAN, STD = tuple(_PRESET.mean), tuple(_PRESET.std)


class ImageNetUnavailable(ResExplorerError):
    """The ImageNet weights are not here and cannot be downloaded."""


@dataclass
class ImageNetModel:
    model: torch.nn.Module
    categories: list[str]


def weights_file() -> str:
    return f"{torch.hub.get_dir()}/checkpoints/{WEIGHTS.url.rsplit('/', 1)[-1]}"


# torchvision names its weight files by the start of their SHA-256:
# resnet50-11ad3fa6.pth. A cached file is checked against it every time
# (torchvision's own loader checks a download, not a file already there).
PUBLISHED_SHA256_PREFIX = WEIGHTS.url.rsplit("-", 1)[-1].split(".")[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The weights files this process has found to be the published ones, by
# path, size and modification time: a download is checked as it arrives, so
# loading it right after (the TTA page downloads, then loads) reads its
# 100 MB once, not twice; a file changed since is checked again.
_CHECKED: set[tuple[str, int, int]] = set()


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def weights_present() -> bool:
    return Path(weights_file()).is_file()


def download_weights(progress: Progress | None = None) -> Path:
    """The weights file, downloaded once, saying how far it has got
    (progress(done in [0, 1], text) after every block: a page's Cancel
    stops it there). Only a whole download whose hash is the published one
    takes the file's place; anything that stops it leaves nothing behind."""
    path = Path(weights_file())
    if path.is_file():
        return path
    partial, digest = None, hashlib.sha256()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A file of its own: the app's sessions are threads of one process, and two may download at once.
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        partial = Path(name)
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(WEIGHTS.url, timeout=30) as response:
            total, got = int(response.headers.get("Content-Length") or 0), 0
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                got += len(block)
                if progress:
                    of = f" of {total / 1e6:.0f}" if total else ""
                    progress(got / total if total else 0.0, f"downloaded {got / 1e6:.0f}{of} MB")
        if not digest.hexdigest().startswith(PUBLISHED_SHA256_PREFIX):
            raise ValueError("the download is damaged: its SHA-256 is not the published one")
        os.replace(partial, path)
        _CHECKED.add(_identity(path))
    except Exception as err:  # URLError, timeouts, a damaged download: all say the same
        raise ImageNetUnavailable(
            f"Could not get the ImageNet ResNet-50 weights ({type(err).__name__}: {str(err)[:160]}). "
            f"If this machine is offline, download {WEIGHTS.url} elsewhere and put it at {path}."
        ) from err
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    return path


def _published_weights() -> Path:
    """The weights file, downloaded once; refused unless it is the published
    one (a download is checked as it arrives; a file found there, here)."""
    if not weights_present():
        return download_weights()
    path = Path(weights_file())
    if _identity(path) in _CHECKED:
        return path
    if not _sha256(path).startswith(PUBLISHED_SHA256_PREFIX):
        raise ImageNetUnavailable(
            f"{path} is not the published weights (its SHA-256 does not start with {PUBLISHED_SHA256_PREFIX}); "
            f"delete it, and download {WEIGHTS.url} again."
        )
    _CHECKED.add(_identity(path))
    return path


def load_imagenet_model(pretrained: bool = True) -> ImageNetModel:
    """ResNet-50 with ImageNet weights (downloaded once into torch's hub
    cache, checked against their published hash, read with weights_only so
    a crafted file cannot run code); pretrained=False gives random weights
    (tests)."""
    if not pretrained:
        return ImageNetModel(resnet50(weights=None).eval(), list(WEIGHTS.meta["categories"]))
    path = _published_weights()
    model = resnet50(weights=None)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:  # torch's own text would suggest turning weights_only off: not said
        raise ImageNetUnavailable(
            f"{path} could not be read safely as ResNet-50 weights ({type(err).__name__}); delete it and "
            f"download {WEIGHTS.url} again."
        ) from err
    return ImageNetModel(model.eval(), list(WEIGHTS.meta["categories"]))


def ten_crops(rgb: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> normalised float [10, 3, 224, 224]."""
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)  # [3, H, W]
    image = TF.resize(image, [RESIZE], antialias=True)  # the shorter side
    if min(image.shape[-2:]) < CROP:  # a thin strip: pad so crops fit
        image = TF.center_crop(image, [max(CROP, image.shape[-2]), max(CROP, image.shape[-1])])
    crops = torch.stack(TF.ten_crop(image, [CROP, CROP])).float() / 255.0
    return TF.normalize(crops, MEAN, STD)


@torch.inference_mode()
def classify(net: ImageNetModel, rgb: np.ndarray, top: int = 5) -> list[tuple[str, float]]:
    """The top classes of a photo with their 10-crop mean probabilities."""
    probs = torch.softmax(net.model(ten_crops(rgb)), dim=1).mean(0)
    values, indices = probs.topk(top)
    return [(net.categories[i], float(v)) for v, i in zip(values, indices)]
