"""The samples' names and the previews of uploads (data/samples.py, data/images.py)."""

import numpy as np
from helpers import png_bytes

from resexplorer.data.images import decode_upload, enlarged
from resexplorer.data.samples import (
    CIFAR10_CLASSES,
    cifar_sample_paths,
    class_in_name,
    is_cifar_sample,
    photo_paths,
    samples_by_name,
)


def test_enlarged_shows_each_pixel_as_a_block():
    image = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)  # [3, H, W]
    shown = enlarged(image, 3)
    assert shown.shape == (6, 6, 3) and shown.dtype == np.uint8
    assert (shown[:3, :3] == image[:, 0, 0]).all() and (shown[3:, 3:] == image[:, 1, 1]).all()
    assert (shown[:3, 3:] == image[:, 0, 1]).all()  # the block right of the first is the pixel right of it
    assert (enlarged(image) == image.transpose(1, 2, 0)).all()


def test_a_preview_too_thin_to_draw_is_said_so():
    assert decode_upload("square.png", png_bytes(40, 40)).drawable_at(192)
    strip = decode_upload("strip.png", png_bytes(4000, 4))  # its preview: 512 x 1 pixels
    assert strip.drawable_at(512) and not strip.drawable_at(192)


def test_sample_names_give_their_class():
    assert class_in_name("cat_03.jpg", CIFAR10_CLASSES) == "cat"
    assert class_in_name("cat-chelsea.png", CIFAR10_CLASSES) is None  # a photo: no class in its name
    assert class_in_name("cat_03.jpg", ["dog", "bird"]) is None  # a run trained on other classes
    cifar, photos = cifar_sample_paths(), photo_paths()
    assert all(is_cifar_sample(p) for p in cifar) and not any(is_cifar_sample(p) for p in photos)
    assert list(samples_by_name()) == [p.name for p in cifar + photos]
    assert list(samples_by_name(photos_first=True)) == [p.name for p in photos + cifar]
