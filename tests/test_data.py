import os
import urllib.error

import numpy as np
import pytest
import torch
from image_corpus import bomb_png
from PIL import Image

from resexplorer.data import sources as data_mod
from resexplorer.data.sources import (
    Normalizer,
    batches_per_epoch,
    epoch_generator,
    load_dataset,
    random_crop_flip,
    shuffled_batches,
    stratified_subset,
)
from resexplorer.data.synthetic import make_synthetic, write_image_folder
from resexplorer.errors import DataError


@pytest.fixture()
def image_folder(tmp_path):
    data = make_synthetic(n_train=30, n_test=12, num_classes=3, seed=2)
    write_image_folder(data, tmp_path / "folder")
    return tmp_path / "folder", data


def test_folder_decodes_to_uint8_tensors_exactly(image_folder):
    root, original = image_folder
    data = load_dataset(str(root))
    assert data.classes == sorted(original.classes)  # class folders in name order
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape == (30, 3, 32, 32)
    assert data.train.labels.dtype == torch.int64
    assert len(data.test) == 12
    # PNG is lossless, and files are read in class then name order
    names = [original.classes[int(label)] for label in original.train.labels]
    order = sorted(range(30), key=lambda i: (names[i], i))
    assert torch.equal(data.train.images, original.train.images[order])
    assert [data.classes[int(label)] for label in data.train.labels] == [names[i] for i in order]
    assert all(0 < m < 1 for m in data.mean) and all(0 < s < 1 for s in data.std)


def test_second_load_comes_from_the_cache_and_a_changed_file_invalidates_it(image_folder, monkeypatch):
    root, _ = image_folder
    first = load_dataset(str(root))
    decoded = []
    real = data_mod._decode_split
    monkeypatch.setattr(data_mod, "_decode_split", lambda *a, **k: decoded.append(1) or real(*a, **k))
    again = load_dataset(str(root))
    assert decoded == [] and torch.equal(again.train.images, first.train.images)
    # change one image: the key changes, the folder is decoded again
    victim = next((root / "train" / first.classes[0]).iterdir())
    Image.new("RGB", (32, 32), (255, 0, 0)).save(victim)
    os.utime(victim, ns=(1, 1))
    changed = load_dataset(str(root))
    assert decoded and not torch.equal(changed.train.images, first.train.images)


def test_first_decode_reports_progress(image_folder):
    root, _ = image_folder
    seen = []
    load_dataset(str(root), progress=lambda done, total, what: seen.append((done, total, what)))
    assert seen[-1][0] == seen[-1][1] and any("train" in w for _, _, w in seen) and any("test" in w for _, _, w in seen)


def test_large_and_odd_images_are_centre_cropped_and_resized(tmp_path):
    for split in ("train", "val"):
        for cls, colour in (("left", (255, 0, 0)), ("right", (0, 0, 255))):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            # 96x64: the left and right 16 columns are green, cropped away by the centre crop
            img = np.zeros((64, 96, 3), np.uint8)
            img[:, :] = colour
            img[:, :16] = img[:, 80:] = (0, 255, 0)
            Image.fromarray(img).save(folder / "a.jpg", quality=95)
            Image.fromarray(img).convert("L").save(folder / "b.png")  # greyscale too
    data = load_dataset(str(tmp_path))
    assert data.test.images.shape == (4, 3, 32, 32)
    red = data.train.images[0].float()
    assert red[0].mean() > 200 and red[1].mean() < 30  # no green left
    assert data.classes == ["left", "right"]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p / "missing", "neither 'cifar10' nor an existing folder"),
        (lambda p: (p / "x" / "train" / "a").mkdir(parents=True) or p / "x", "needs a train/ and a test/"),
        (
            lambda p: [(p / "y" / s / "a").mkdir(parents=True) for s in ("train", "test")] and p / "y",
            "at least two class folders",
        ),
    ],
)
def test_bad_folders_give_clear_errors(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_dataset(str(make(tmp_path)))


def test_undecodable_image_is_named(image_folder):
    root, data = image_folder
    bad = root / "train" / data.classes[1] / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="broken.jpg"):
        load_dataset(str(root))


@pytest.mark.parametrize(
    "plant, words",
    [
        (lambda folder: (folder / "broken-link.png").symlink_to(folder / "gone.png"), "broken-link.png"),
        (lambda folder: (folder / "loop.png").symlink_to(folder / "loop.png"), "loop.png"),
        (lambda folder: (folder / "huge.png").write_bytes(bomb_png(9000, 9000)), "huge.png: 9000x9000 pixels"),
    ],
    ids=["dangling link", "link loop", "81 megapixels"],
)
def test_a_data_folder_gets_the_upload_rules_and_names_the_file(image_folder, plant, words):
    """A dangling link or a link loop once raised a traceback, and an image of
    any size was decoded in full: each is now refused by name, images over
    the uploads' 64-megapixel limit unread."""
    root, data = image_folder
    plant(root / "train" / data.classes[0])
    with pytest.raises(DataError, match=words) as caught:
        load_dataset(str(root))
    if "huge" in words:
        assert "megapixel limit" in str(caught.value)


def test_cifar10_offline_names_the_folder_and_the_alternative(monkeypatch, tmp_path):
    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", cache_dir=tmp_path)
    text = str(info.value)
    assert str(tmp_path / "cifar10") in text and "cifar-10-python.tar.gz" in text and "image folder" in text


def test_stratified_subset_keeps_class_proportions_and_is_deterministic():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    a = stratified_subset(labels, 20, seed=3)
    assert len(a) == 20 and len(set(a.tolist())) == 20
    assert torch.bincount(labels[a]).tolist() == [12, 6, 2]
    assert torch.equal(a, stratified_subset(labels, 20, seed=3))
    assert not torch.equal(a, stratified_subset(labels, 20, seed=4))


def test_batches_cover_the_split_once_in_a_seeded_order():
    batches = list(shuffled_batches(10, 4, epoch_generator(0, 0)))
    assert [len(b) for b in batches] == [4, 4, 2] == [4, 4, 2][: batches_per_epoch(10, 4)]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = list(shuffled_batches(10, 4, epoch_generator(0, 0)))
    assert all(torch.equal(x, y) for x, y in zip(batches, again))
    assert batches_per_epoch(9, 4) == 2  # a last batch of one is dropped


def test_crop_and_flip_are_shifts_and_mirrors_of_the_padded_image():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32) + 1
    gen = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, gen)
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(2):
        candidates = [
            view
            for dy in range(9)
            for dx in range(9)
            for view in (padded[i, :, dy : dy + 32, dx : dx + 32], padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1))
        ]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_crop_flip_is_seeded_and_varied():
    images = torch.randint(0, 255, (64, 3, 32, 32), dtype=torch.uint8)
    a = random_crop_flip(images, torch.Generator().manual_seed(5))
    b = random_crop_flip(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.dtype == torch.uint8
    changed = (a != images).flatten(1).any(1).float().mean()
    assert changed > 0.8  # 1 in 162 draws is the untouched view


def test_normalizer_matches_the_formula():
    images = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    out = Normalizer(mean, std)(images)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_synthetic_is_deterministic():
    a, b = make_synthetic(seed=7), make_synthetic(seed=7)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert load_dataset("synthetic").num_classes == 10
