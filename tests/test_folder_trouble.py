"""File-system trouble is one line that names the path and what to do,
never a traceback: a runs folder that is a file, read-only or cannot be
made (train, import, resume), a user cache that is a file or read-only
(Start and Resume on the pages: the machine lock lives there). What can be
read is still read."""

import contextlib
import shutil
from pathlib import Path

import pytest
from helpers import ON_CPU, app, drawn, make_image_folder, read_only

from resexplorer.cli import main
from resexplorer.errors import FolderError
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.transfer import export_runs
from resexplorer.services import reference
from resexplorer.training.jobs import JobManager
from resexplorer.training.launch import new_race


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    """A cancelled (so resumable) run, and an export of it."""
    root = tmp_path_factory.mktemp("made")
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)],
        tiny_data,
        TrainConfig(epochs=1, batch_size=32, lr=0.05),
        root,
        options=ON_CPU,
    )
    race.run()
    run = runs["resnet-8"]
    run.set_status("cancelled")
    archive = root.parent / f"{root.name}.zip"
    export_runs([run], archive)
    return run, archive


def _a_file(tmp_path) -> Path:
    path = tmp_path / "runs-is-a-file"
    path.write_text("not a folder")
    return path


def _one_line(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(word in err for word in words), err
    return err


def _errors_drawn(at) -> str:
    """The page's error messages as drawn, once it has run without an exception."""
    assert not at.exception, at.exception
    return " ".join(drawn(e) for e in at.error)


TRAIN = ["train", "--model", "resnet-8", "--data", "synthetic", "--epochs", "1"]


def test_train_into_a_runs_folder_that_is_a_file(tmp_path, capsys):
    runs = _a_file(tmp_path)
    assert main([*TRAIN, "--runs", str(runs)]) == 2
    _one_line(capsys, str(runs), "is a file, not a folder", "choose another runs folder")


def test_train_into_a_runs_folder_that_cannot_be_made(tmp_path, capsys):
    runs = _a_file(tmp_path) / "runs"
    assert main([*TRAIN, "--runs", str(runs)]) == 2
    _one_line(capsys, str(runs), "cannot be made", "is a file")


def test_train_into_a_read_only_runs_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    with read_only(runs):
        assert main([*TRAIN, "--runs", str(runs)]) == 2
    _one_line(capsys, str(runs), "choose another runs folder")


def test_import_into_runs_folders_that_cannot_take_it(finished, tmp_path, capsys):
    _, archive = finished
    runs = _a_file(tmp_path)
    assert main(["import", str(archive), "--runs", str(runs)]) == 2
    _one_line(capsys, str(runs), "is a file, not a folder")
    runs = tmp_path / "runs"
    runs.mkdir()
    with read_only(runs):
        assert main(["import", str(archive), "--runs", str(runs)]) == 2
    _one_line(capsys, str(runs), "choose another runs folder")


def test_resume_a_run_in_a_read_only_folder(finished, tmp_path, capsys):
    run, _ = finished
    copy = tmp_path / "runs" / run.run_id
    shutil.copytree(run.path, copy)
    with read_only(copy):
        assert main(["resume", str(copy), "--data", "synthetic"]) == 2
        _one_line(capsys, str(copy), "copy the run into a runs folder you can write to")
        assert main(["runs", "--runs", str(tmp_path / "runs")]) == 0  # reading still works
        assert run.run_id in capsys.readouterr().out


def test_reading_a_runs_folder_that_is_a_file_lists_nothing_and_says_so(tmp_path, capsys):
    runs = _a_file(tmp_path)
    assert main(["runs", "--runs", str(runs)]) == 0
    assert "no runs" in capsys.readouterr().out


@pytest.mark.parametrize("trouble", ["a file", "read-only"])
def test_a_job_cannot_start_where_the_user_cache_cannot_hold_the_machine_lock(tmp_path, monkeypatch, trouble):
    cache = tmp_path / "cache"
    if trouble == "a file":
        cache.write_text("not a folder")
    else:
        cache.mkdir()
    monkeypatch.setenv("RESEXPLORER_CACHE", str(cache))
    with read_only(cache) if trouble == "read-only" else contextlib.nullcontext():
        with pytest.raises(FolderError, match="the user cache .*RESEXPLORER_CACHE"):
            JobManager(tmp_path / "runs").start_training(["resnet-8"], "synthetic", TrainConfig(epochs=1))
    assert JobManager(tmp_path / "runs").jobs() == []


@pytest.fixture()
def pages_with_a_file_for_a_cache(finished, tmp_path, monkeypatch):
    """A runs folder with a resumable run, the data it learned, and a user
    cache that is a file."""
    run, _ = finished
    runs = tmp_path / "runs"
    shutil.copytree(run.path, runs / run.run_id)
    folder = make_image_folder(tmp_path / "images", n_train=48, n_test=24, classes=4)
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    monkeypatch.setenv("RESEXPLORER_CACHE", str(cache))
    monkeypatch.setenv("RESEXPLORER_RUNS", str(runs))
    monkeypatch.setenv("RESEXPLORER_DATA", str(folder))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    return runs, cache, run.run_id


def test_start_on_the_train_page_says_what_to_do_when_the_cache_is_a_file(pages_with_a_file_for_a_cache):
    runs, cache, _ = pages_with_a_file_for_a_cache
    at = app("pages/train.py")
    assert not at.exception
    at.button(key="start").click().run()
    said = _errors_drawn(at)
    assert str(cache) in said and "RESEXPLORER_CACHE" in said, said
    assert JobManager(runs).jobs() == []


def test_resume_on_the_runs_page_says_what_to_do_when_the_cache_is_a_file(pages_with_a_file_for_a_cache):
    from helpers import tick_runs

    runs, cache, run_id = pages_with_a_file_for_a_cache
    at = app("pages/runs.py")
    tick_runs(at, [run_id])
    at.button(key="resume").click().run()
    said = _errors_drawn(at)
    assert str(cache) in said and "RESEXPLORER_CACHE" in said, said


def test_the_train_page_says_what_to_do_when_the_runs_folder_is_a_file(tmp_path, monkeypatch):
    runs = _a_file(tmp_path)
    monkeypatch.setenv("RESEXPLORER_RUNS", str(runs))
    monkeypatch.setenv("RESEXPLORER_DATA", str(make_image_folder(tmp_path / "images")))
    at = app("pages/train.py")
    assert not at.exception
    at.button(key="start").click().run()
    said = _errors_drawn(at)
    assert str(runs) in said and "is a file, not a folder" in said, said
