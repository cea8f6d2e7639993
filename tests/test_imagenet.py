"""The ImageNet classifier: its 10-crop pipeline, and a clear message offline."""

import numpy as np
import pytest
from torchvision.models import ResNet50_Weights

from resexplorer.science import imagenet


def test_ten_crops_at_224_after_resizing_the_shorter_side_to_256():
    crops = imagenet.ten_crops(np.zeros((300, 600, 3), dtype=np.uint8))
    assert crops.shape == (10, 3, 224, 224)
    assert np.allclose(crops[:, 0].numpy(), -0.485 / 0.229, atol=1e-5)  # black, normalised
    assert imagenet.ten_crops(np.zeros((10, 2000, 3), dtype=np.uint8)).shape == (10, 3, 224, 224)  # a thin strip


def test_classify_returns_the_top_classes_by_mean_probability():
    net = imagenet.load_imagenet_model(pretrained=False)
    top = imagenet.classify(net, np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8), top=5)
    assert len(top) == 5 and all(name in net.categories for name, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6  # float32 rounding


def test_offline_gives_a_message_that_says_what_to_do(monkeypatch):
    def offline(self, *args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(ResNet50_Weights, "get_state_dict", offline)
    with pytest.raises(imagenet.ImageNetUnavailable, match="put it at .*resnet50-11ad3fa6.pth"):
        imagenet.load_imagenet_model()
