"""The ImageNet classifier: its 10-crop pipeline, and a clear message offline."""

import hashlib
import io
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
    monkeypatch.setattr(imagenet.urllib.request, "urlopen", offline)
    with pytest.raises(imagenet.ImageNetUnavailable, match="put it at .*resnet50-11ad3fa6.pth"):
        imagenet.load_imagenet_model()
    assert not list(tmp_path.rglob("*"))[1:]  # the checkpoints folder at most: no partial file


class _Served(io.BytesIO):
    """What urlopen hands back for the weights: a body and its length."""

    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def _serve(monkeypatch, tmp_path, payload: bytes, published: bytes | None = None) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(imagenet.urllib.request, "urlopen", lambda url, timeout: _Served(payload))
    digest = hashlib.sha256(payload if published is None else published).hexdigest()
    monkeypatch.setattr(imagenet, "PUBLISHED_SHA256_PREFIX", digest[:8])


def test_the_download_says_how_far_it_has_got_and_lands_only_when_whole(monkeypatch, tmp_path):
    payload = os.urandom(3 * (1 << 20) + 5)  # three whole blocks and a bit
    _serve(monkeypatch, tmp_path, payload)
    said = []
    path = imagenet.download_weights(lambda done, text: said.append((done, text)))
    assert path.read_bytes() == payload and imagenet.weights_present()
    assert [round(done, 3) for done, _ in said] == [round(n / len(payload), 3) for n in (1 << 20, 2 << 20, 3 << 20)] + [
        1.0
    ]
    assert said[-1][1] == "downloaded 3 of 3 MB"
    assert imagenet.download_weights(lambda *a: pytest.fail("downloaded twice")) == path


class _Cancelled(BaseException):
    """What a page's Cancel raises inside the progress call (Streamlit's rerun is a BaseException)."""


def test_a_download_is_read_once_and_a_file_changed_since_is_checked_again(monkeypatch, tmp_path):
    payload = os.urandom((1 << 20) + 7)
    _serve(monkeypatch, tmp_path, payload)
    path = imagenet.download_weights()
    hashed = []
    real = imagenet._sha256
    monkeypatch.setattr(imagenet, "_sha256", lambda p: hashed.append(p) or real(p))
    assert imagenet._published_weights() == path and hashed == []  # checked as it arrived
    path.write_bytes(b"not the weights")
    with pytest.raises(imagenet.ImageNetUnavailable, match="is not the published weights"):
        imagenet._published_weights()
    assert hashed == [path]


def test_a_cancelled_or_damaged_download_leaves_nothing_behind(monkeypatch, tmp_path):
    _serve(monkeypatch, tmp_path, os.urandom(2 << 20))

    def cancel(done, text):
        raise _Cancelled

    with pytest.raises(_Cancelled):
        imagenet.download_weights(cancel)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    _serve(monkeypatch, tmp_path, os.urandom(2 << 20), published=b"something else")
    with pytest.raises(imagenet.ImageNetUnavailable, match="damaged"):
        imagenet.download_weights()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()] and not imagenet.weights_present()


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
