import pytest
import torch
from helpers import make_image_folder

from resexplorer.data.sources import load_dataset
from resexplorer.data.synthetic import make_synthetic
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.services import reference
from resexplorer.training.launch import new_race


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


@pytest.fixture()
def two_runs(tmp_path, monkeypatch):
    """A plain and a residual net trained for 2 epochs on a synthetic image
    folder, that folder as the data source, and no shipped runs."""
    folder = make_image_folder(tmp_path / "images", n_train=48, n_test=24)
    monkeypatch.setenv("RESEXPLORER_DATA", str(folder))
    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    data = load_dataset(str(folder))
    models = [ModelConfig.from_name(name, num_classes=3) for name in ("plain-8", "resnet-8")]
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    race, runs = new_race(models, data, config, tmp_path / "runs", options=RunOptions(device="cpu"))
    race.run()
    return runs


@pytest.fixture(autouse=True)
def _playground_runners_stop():
    """A Playground page opened by a test leaves its training thread running
    until its session is missed; each test's are stopped when it ends."""
    yield
    from resexplorer.training import playground

    playground.stop_all()
