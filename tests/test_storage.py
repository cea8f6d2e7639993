"""Atomic writes when the disk fills: a message that says so, the old file
kept; and a cache that cannot be written only costs speed."""

import errno

import pytest
import torch
from helpers import make_image_folder

from resexplorer import storage
from resexplorer.data import sources
from resexplorer.errors import DiskFullError
from resexplorer.training.failures import failure_of


def _full_disk(monkeypatch):
    """What torch.save reports on a full disk, from its zip writer."""

    def failing_save(obj, handle):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(storage, "free_bytes", lambda folder: 0)
    return failing_save


def test_a_full_disk_says_no_space_left_on_the_folder_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    target.write_bytes(b"the previous epoch")
    failing_save = _full_disk(monkeypatch)
    with pytest.raises(DiskFullError, match=f"no space left on {tmp_path}"):
        storage.atomic_write(target, lambda handle: failing_save({}, handle))
    assert target.read_bytes() == b"the previous epoch" and list(tmp_path.iterdir()) == [target]
    assert failure_of(DiskFullError("no space left on x")).kind == "disk"


def test_an_os_error_of_a_full_disk_reads_the_same(tmp_path, monkeypatch):
    def full(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match="no space left"):
        storage.atomic_write(tmp_path / "x.json", full)


def test_a_cache_that_cannot_be_written_only_costs_speed(tmp_path, monkeypatch):
    failing_save = _full_disk(monkeypatch)
    monkeypatch.setattr(torch, "save", failing_save)
    folder = make_image_folder(tmp_path / "images")
    data = sources.load_dataset(str(folder), tmp_path / "cache")  # decoded and used, not cached
    assert len(data.train) > 0 and not list((tmp_path / "cache").rglob("*.pt"))


def test_a_full_disk_names_a_file_that_was_never_there_without_a_previous_one(tmp_path):
    def full(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as caught:
        storage.atomic_write(tmp_path / "new.json", full)
    assert "new.json was not written" in str(caught.value) and "previous" not in str(caught.value)


def test_a_run_whose_config_cannot_be_written_leaves_no_folder(tmp_path, monkeypatch):
    from resexplorer.nets.config import ModelConfig
    from resexplorer.runs import store as store_module
    from resexplorer.runs.recipe import TrainConfig

    def full(obj, path):
        raise DiskFullError(f"no space left on {path.parent}: {path.name} was not written")

    monkeypatch.setattr(store_module, "atomic_write_json", full)
    with pytest.raises(DiskFullError):
        store_module.RunStore(tmp_path / "runs").create(ModelConfig(), TrainConfig(), {})
    assert list((tmp_path / "runs").iterdir()) == []
