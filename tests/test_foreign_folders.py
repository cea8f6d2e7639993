"""A runs folder pointed at other programs' files loses none of them: a
folder is the store's to delete only if it proves it is a run (the marker
the store writes first into every run folder it makes, or, for folders made
before the marker, a config that reads whole as a run's). A damaged run is
listed and can go; a folder that is not provably a run is named as "not a
run" and left alone, by the store, the `delete` command and the Runs page."""

import json
import shutil

import pytest
from helpers import ON_CPU, app, drawn

from resexplorer.cli import main
from resexplorer.errors import RunError
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RUN_MARKER, Run, RunStore
from resexplorer.services import reference
from resexplorer.training.launch import new_race

# Other programs' folders that look a little like runs: each holds a
# config.json that will not read as a run, and a file of its owner's.
FOREIGN = {
    "json-with-comments": b'{\n  // editor settings\n  "tabs": 4\n}\n',
    "byte-order-mark": b'\xef\xbb\xbf{"name": "notes"}',
    "a-list": b"[1, 2, 3]",
    "look-alike": json.dumps({"format": "resexplorer-run", "model_name": "resnet-20", "train": {}}).encode(),
}
OWNERS_FILE = "thesis.tex"


@pytest.fixture(scope="module")
def good_run(tiny_data, tmp_path_factory):
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)],
        tiny_data,
        TrainConfig(epochs=1, batch_size=32, lr=0.05),
        tmp_path_factory.mktemp("good"),
        options=ON_CPU,
    )
    race.run()
    return runs["resnet-8"]


def _mixed_folder(tmp_path, good_run):
    """A runs folder: a good run, a damaged run of ours (its config cut
    short) and other programs' folders, one of them with run-like files."""
    root = tmp_path / "runs"
    shutil.copytree(good_run.path, root / good_run.run_id)
    damaged = root / "20260101-000000-resnet-8-damaged"
    shutil.copytree(good_run.path, damaged)
    (damaged / "config.json").write_text("{")
    for name, config in FOREIGN.items():
        folder = root / name
        folder.mkdir()
        (folder / "config.json").write_bytes(config)
        (folder / OWNERS_FILE).write_text("years of work")
    # No config at all, but files a run would have.
    (root / "other-logs").mkdir()
    (root / "other-logs" / "metrics.jsonl").write_text('{"kind": "epoch"}\n')
    (root / "other-logs" / "status.json").write_text('{"status": "running"}')
    (root / "other-logs" / OWNERS_FILE).write_text("more work")
    return root, damaged.name


def _foreign_names():
    return sorted([*FOREIGN, "other-logs"])


def _intact(root) -> bool:
    return all((root / name / OWNERS_FILE).read_text() for name in _foreign_names())


def test_every_run_the_store_makes_carries_its_marker(good_run):
    assert (good_run.path / RUN_MARKER).is_file()
    assert good_run.provably_a_run()


def test_a_scan_names_other_programs_folders_as_not_runs_and_offers_only_ours_as_damaged(tmp_path, good_run):
    root, damaged = _mixed_folder(tmp_path, good_run)
    found = RunStore(root).scan()
    assert [run.run_id for run in found.runs] == [good_run.run_id]
    assert [run.run_id for run in found.damaged] == [damaged]
    assert sorted(folder.run_id for folder in found.not_runs) == _foreign_names()
    assert all("not a run" in folder.problem for folder in found.not_runs)


@pytest.mark.parametrize("name", _foreign_names())
def test_the_store_refuses_to_delete_a_folder_that_is_not_provably_a_run(tmp_path, good_run, name):
    root, _ = _mixed_folder(tmp_path, good_run)
    with pytest.raises(RunError, match="not a run"):
        RunStore(root).delete(name)
    assert _intact(root)


def test_a_run_from_before_the_marker_is_a_run_while_its_config_reads(tmp_path, good_run):
    root = tmp_path / "runs"
    shutil.copytree(good_run.path, root / good_run.run_id)
    (root / good_run.run_id / RUN_MARKER).unlink()
    assert Run(root / good_run.run_id).provably_a_run()
    RunStore(root).delete(good_run.run_id)
    assert not (root / good_run.run_id).exists()


def test_a_marker_of_another_content_proves_nothing(tmp_path, good_run):
    root, _ = _mixed_folder(tmp_path, good_run)
    (root / "a-list" / RUN_MARKER).write_text("anything")
    assert not Run(root / "a-list").provably_a_run()


def test_the_delete_command_deletes_runs_and_damaged_runs_and_refuses_the_rest(tmp_path, good_run, capsys):
    root, damaged = _mixed_folder(tmp_path, good_run)
    assert main(["delete", str(root / damaged), str(root / "json-with-comments")]) == 2
    said = capsys.readouterr()
    assert "Traceback" not in said.err and "json-with-comments" in said.err and "not a run" in said.err
    assert not (root / damaged).exists() and _intact(root)
    assert main(["delete", str(root / good_run.run_id)]) == 0
    assert not (root / good_run.run_id).exists() and _intact(root)


def test_the_runs_command_names_the_folders_that_are_not_runs(tmp_path, good_run, capsys):
    root, damaged = _mixed_folder(tmp_path, good_run)
    assert main(["runs", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{damaged}  damaged" in out
    for name in _foreign_names():
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "not a run" in line, line


def test_the_runs_page_deletes_the_damaged_runs_and_leaves_other_programs_folders(tmp_path, good_run, monkeypatch):
    root, damaged = _mixed_folder(tmp_path, good_run)
    monkeypatch.setenv("RESEXPLORER_RUNS", str(root))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    at = app("pages/runs.py")
    said = " ".join(drawn(w) for w in [*at.warning, *at.caption, *at.info])
    assert "1 damaged" in at.checkbox(key="confirm_delete_damaged").label
    for name in _foreign_names():
        assert name in said, name
    assert "not a run" in said
    at.checkbox(key="confirm_delete_damaged").check().run()
    at.button(key="delete_damaged").click().run()
    assert not at.exception and not at.error
    assert not (root / damaged).exists() and (root / good_run.run_id).is_dir() and _intact(root)
