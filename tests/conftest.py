import pytest
import torch

from resexplorer.synthetic import make_synthetic


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's data cache."""
    monkeypatch.setenv("RESEXPLORER_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_data():
    """120 training and 40 test images in 4 classes."""
    return make_synthetic(n_train=120, n_test=40, num_classes=4, seed=1)
