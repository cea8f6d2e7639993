"""The ImageNet classifier: its 10-crop pipeline, and a clear message offline."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from resexplorer.science import imagenet


def test_ten_crops_at_224_after_resizing_the_shorter_side():
    crops = imagenet.ten_crops(np.zeros((300, 600, 3), dtype=np.uint8))
    assert crops.shape == (10, 3, 224, 224)
    assert np.allclose(crops[:, 0].numpy(), -0.485 / 0.229, atol=1e-5)  # black, normalised
    assert imagenet.ten_crops(np.zeros((10, 2000, 3), dtype=np.uint8)).shape == (10, 3, 224, 224)  # a thin strip


def test_the_crops_come_from_the_weights_own_preprocessing():
    """IMAGENET1K_V2 was evaluated at resize 232, crop 224: a 232x232 photo
    is not resized, and its centre crop starts at column 4."""
    photo = np.zeros((232, 232, 3), dtype=np.uint8)
    photo[:, 4] = 255
    centre = imagenet.ten_crops(photo)[4, 0]  # torchvision's ten_crop: four corners, then the centre
    white = (1 - imagenet.MEAN[0]) / imagenet.STD[0]
    assert np.allclose(centre[:, 0].numpy(), white, atol=1e-5) and centre[:, 1].max() < 0
    preset = imagenet.WEIGHTS.transforms()
    assert (imagenet.RESIZE, imagenet.CROP) == (preset.resize_size[0], preset.crop_size[0])


def test_classify_returns_the_top_classes_by_mean_probability():
    net = imagenet.load_imagenet_model(pretrained=False)
    top = imagenet.classify(net, np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8), top=5)
    assert len(top) == 5 and all(name in net.categories for name, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6  # float32 rounding


def test_offline_gives_a_message_that_says_what_to_do(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(imagenet.ImageNetUnavailable, match="put it at .*resnet50-11ad3fa6.pth"):
        imagenet.load_imagenet_model()


class _Payload:
    """A pickle that runs code when loaded without weights_only."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "imagenet-payload-ran"


def _plant(tmp_path, monkeypatch) -> Path:
    """A crafted file where the weights are cached, as an attacker could leave it."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = Path(imagenet.weights_file())
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": _Payload()}, path)
    return path


def test_a_cached_weights_file_that_is_not_the_published_one_is_refused(tmp_path, monkeypatch):
    _plant(tmp_path, monkeypatch)
    with pytest.raises(imagenet.ImageNetUnavailable, match="not the published weights"):
        imagenet.load_imagenet_model()
    assert not (tmp_path / MARKER).exists()


def test_even_a_file_with_the_right_hash_is_loaded_without_running_code(tmp_path, monkeypatch):
    path = _plant(tmp_path, monkeypatch)
    monkeypatch.setattr(imagenet, "PUBLISHED_SHA256_PREFIX", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    with pytest.raises(imagenet.ImageNetUnavailable, match="could not be read safely"):
        imagenet.load_imagenet_model()
    assert not (tmp_path / MARKER).exists()
