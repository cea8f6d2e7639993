"""Runs that travel: export to one zip, import elsewhere; an archive is
someone else's file, so everything in it is checked before it lands."""

import hashlib
import io
import json
import pickle
import stat
import zipfile

import pytest
import torch
from helpers import ON_CPU

from resexplorer import storage
from resexplorer.cli import main
from resexplorer.nets.config import ModelConfig
from resexplorer.runs import transfer
from resexplorer.runs.checkpoints import load_run_checkpoint
from resexplorer.runs.recipe import TrainConfig
from resexplorer.runs.store import RunStore
from resexplorer.runs.transfer import MANIFEST, ArchiveError, archive_bytes, export_runs, import_runs
from resexplorer.training.launch import new_race


@pytest.fixture(scope="module")
def race_runs(tiny_data, tmp_path_factory):
    models = [ModelConfig("plain", 8, num_classes=4), ModelConfig("resnet", 8, num_classes=4)]
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05)
    race, runs = new_race(models, tiny_data, config, tmp_path_factory.mktemp("made-here"), options=ON_CPU)
    race.run()
    return list(runs.values())


@pytest.fixture(scope="module")
def exported(race_runs, tmp_path_factory) -> bytes:
    target = tmp_path_factory.mktemp("zip") / "runs.zip"
    export_runs(race_runs, target)
    return target.read_bytes()


def _files(root, run_id) -> dict[str, bytes]:
    folder = root / run_id
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _rezip(original: bytes, change=lambda name, data: (name, data), extra=(), manifest_change=None, attrs=None):
    """A copy of an archive with members changed (their checksums kept in
    step unless the change says otherwise), added, or given attributes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w") as dst:
        manifest = json.loads(src.read(MANIFEST))
        for info in src.infolist():
            if info.filename == MANIFEST:
                continue
            name, data = change(info.filename, src.read(info))
            entry = manifest["files"].pop(info.filename)
            if data is not None:
                manifest["files"][name] = entry if data == src.read(info) else _entry(data)
                dst.writestr(name, data)
        for name, data in extra:
            info = zipfile.ZipInfo(name)
            if attrs:
                info.external_attr = attrs
            dst.writestr(info, data)
            manifest["files"][name] = _entry(data)
        if manifest_change:
            manifest_change(manifest)
        dst.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def _entry(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_runs_exported_here_import_there_as_they_were(race_runs, exported, tmp_path):
    store = RunStore(tmp_path / "elsewhere")
    report = import_runs(io.BytesIO(exported), store)
    assert report.imported == [r.run_id for r in race_runs] and not report.skipped
    for run in race_runs:
        there = store.get(run.run_id)
        here_files, there_files = _files(run.path.parent, run.run_id), _files(store.root, run.run_id)
        assert set(there_files) == set(here_files) - {"writer.lock"}
        assert all(there_files[name] == here_files[name] for name in there_files if name != "status.json")
        assert there.status()["status"] == "done" and there.kept_epochs() == run.kept_epochs()
        a, b = load_run_checkpoint(run)["model"], load_run_checkpoint(there)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_an_archive_made_in_memory_is_the_same_archive(race_runs, tmp_path):
    """What the Runs page's download hands the browser."""
    report = import_runs(io.BytesIO(archive_bytes(race_runs)), RunStore(tmp_path), label="runs.zip")
    assert report.imported == [r.run_id for r in race_runs]


def test_a_run_id_that_exists_is_never_overwritten(race_runs, exported, tmp_path):
    store = RunStore(tmp_path / "runs")
    first = race_runs[0]
    mine = store.root / first.run_id
    mine.mkdir(parents=True)
    (mine / "note.txt").write_text("mine")
    report = import_runs(io.BytesIO(exported), store)
    assert report.imported == [race_runs[1].run_id]
    assert report.skipped == [f"{first.run_id} is in {store.root} already; not overwritten"]
    assert [p.name for p in mine.iterdir()] == ["note.txt"]


@pytest.mark.parametrize(
    "member, words",
    [("../escaped.txt", "lies outside"), ("/tmp/absolute.txt", "lies outside"), ("elsewhere/x.txt", "lies outside")],
)
def test_paths_out_of_the_runs_are_refused_and_nothing_lands(exported, tmp_path, member, words):
    store = RunStore(tmp_path / "deep" / "runs")
    crafted = _rezip(exported, extra=[(member, b"payload")])
    with pytest.raises(ArchiveError, match=words):
        import_runs(io.BytesIO(crafted), store)
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not list(tmp_path.rglob("x.txt"))
    assert not store.root.exists() or not list(store.root.iterdir())


def test_links_unlisted_and_oversized_members_are_refused(race_runs, exported, tmp_path, monkeypatch):
    run_id = race_runs[0].run_id
    link = _rezip(
        exported, extra=[(f"{run_id}/checkpoints/evil.pt", b"/etc/passwd")], attrs=(stat.S_IFLNK | 0o777) << 16
    )
    with pytest.raises(ArchiveError, match="is a link"):
        import_runs(io.BytesIO(link), RunStore(tmp_path / "a"))

    def unlist(manifest):
        manifest["files"].pop(f"{run_id}/config.json")

    with pytest.raises(ArchiveError, match="not in its resexplorer-runs.json"):
        import_runs(io.BytesIO(_rezip(exported, manifest_change=unlist)), RunStore(tmp_path / "b"))
    monkeypatch.setattr(transfer, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ArchiveError, match="is over the"):
        import_runs(io.BytesIO(exported), RunStore(tmp_path / "c"))
    assert not any((tmp_path / name).exists() and list((tmp_path / name).iterdir()) for name in "abc")


def test_a_member_that_does_not_match_its_checksum_refuses_its_run_only(race_runs, exported, tmp_path):
    bad, good = race_runs
    target = f"{bad.run_id}/metrics.jsonl"

    def flip(name, data):
        return name, data[:-10] + bytes(b ^ 0xFF for b in data[-10:]) if name == target else data

    def keep_old_checksums(manifest):
        manifest["files"][target] = json.loads(zipfile.ZipFile(io.BytesIO(exported)).read(MANIFEST))["files"][target]

    report = import_runs(io.BytesIO(_rezip(exported, flip, manifest_change=keep_old_checksums)), RunStore(tmp_path))
    assert report.imported == [good.run_id]
    assert report.skipped[0].startswith(f"{bad.run_id} not imported") and "checksum" in report.skipped[0]
    assert not (tmp_path / bad.run_id).exists()


def test_a_pickle_that_would_run_code_is_refused_with_its_run(race_runs, exported, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run_id = race_runs[0].run_id
    name = f"{run_id}/checkpoints/epoch-0003.pt"
    crafted = _rezip(exported, lambda n, d: (n, pickle.dumps(Payload()) if n == name else d))
    report = import_runs(io.BytesIO(crafted), RunStore(tmp_path / "runs"))
    assert run_id not in report.imported and "epoch-0003.pt" in report.skipped[0]
    assert not marker.exists() and not (tmp_path / "runs" / run_id).exists()


@pytest.mark.parametrize(
    "archive, words",
    [
        (lambda z: z[: len(z) // 2], "not a readable zip archive"),
        (lambda z: b"not a zip at all", "not a readable zip archive"),
        (lambda z: _without_manifest(z), "not a ResNet Explorer export"),
    ],
    ids=["cut short", "not a zip", "no manifest"],
)
def test_damaged_and_foreign_archives_say_so(exported, tmp_path, archive, words):
    with pytest.raises(ArchiveError, match=words):
        import_runs(io.BytesIO(archive(exported)), RunStore(tmp_path))


def _without_manifest(original: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != MANIFEST:
                dst.writestr(info, src.read(info))
    return out.getvalue()


def test_a_run_still_training_is_not_exported(race_runs, tmp_path):
    run = race_runs[0]
    run.set_status("running")  # this live process, as a trainer would write it
    try:
        with pytest.raises(Exception, match="still training"):
            export_runs([run], tmp_path / "x.zip")
    finally:
        run.set_status("done")


def test_the_command_line_exports_and_imports(race_runs, tmp_path, capsys):
    archive = tmp_path / "runs.zip"
    assert main(["export", *[str(r.path) for r in race_runs], "-o", str(archive)]) == 0
    assert main(["import", str(archive), "--runs", str(tmp_path / "there")]) == 0
    out = capsys.readouterr().out
    assert all(f"imported {r.run_id}" in out for r in race_runs)
    assert main(["import", str(archive), "--runs", str(tmp_path / "there")]) == 0
    assert "not overwritten" in capsys.readouterr().out
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert main(["import", str(tmp_path / "junk.zip"), "--runs", str(tmp_path / "there")]) == 2
    assert "not a readable zip archive" in capsys.readouterr().err


def test_the_runs_page_imports_an_upload_and_offers_ticked_runs_as_a_zip(race_runs, exported, tmp_path, monkeypatch):
    from helpers import app, drawn, tick_runs

    from resexplorer.services import reference

    monkeypatch.setenv("RESEXPLORER_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(reference, "REFERENCE_RUNS_DIR", tmp_path / "no-shipped-runs")
    at = app("pages/runs.py")
    at.file_uploader(key="import_zip").set_value([("runs.zip", exported, "application/zip")]).run()
    at.button(key="import_runs").click().run()
    assert not at.exception and not at.error
    assert any("Imported 2 run(s)" in drawn(s) for s in at.success)
    ids = [r.run_id for r in race_runs]
    assert sorted(at.dataframe[0].value["run"].tolist()) == sorted(ids)
    tick_runs(at, ids)
    button = at.get("download_button")[-1]
    assert button.proto.label.startswith("These runs") and not button.proto.disabled
    at.file_uploader(key="import_zip").set_value([("runs.zip", b"junk", "application/zip")]).run()
    at.button(key="import_runs").click().run()
    assert any("not a readable zip archive" in e.value for e in at.error)


# --- what an archive may hold: caps checked from its directory, before a byte is written


def _bomb(run_id: str, members: dict[str, bytes], runs: list[str] | None = None) -> bytes:
    """A crafted archive: these members, listed with their true sizes and
    checksums, compressed as hard as deflate can."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        manifest = {
            "format": transfer.ARCHIVE_FORMAT,
            "version": transfer.ARCHIVE_VERSION,
            "runs": runs or [run_id],
            "files": {name: _entry(data) for name, data in members.items()},
        }
        archive.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def _nothing_written(root) -> bool:
    return not root.exists() or not list(root.iterdir())


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_written(tmp_path):
    zeros = bytes(64 << 20)  # 64 MiB of zeros: about 64 KB compressed
    crafted = _bomb("20260101-000000-resnet-8-bomb", {"20260101-000000-resnet-8-bomb/checkpoints/epoch-0001.pt": zeros})
    assert len(crafted) < len(zeros) // 500
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ArchiveError, match="compress"):
        import_runs(io.BytesIO(crafted), store)
    assert _nothing_written(store.root)


def test_an_archive_over_what_its_runs_can_hold_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "MAX_RUN_BYTES", 1 << 20)
    run_id = "20260101-000000-resnet-8-big"
    members = {f"{run_id}/analysis/part-{i}.json": secrets_bytes(300 << 10) for i in range(4)}
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ArchiveError, match="more than a run"):
        import_runs(io.BytesIO(_bomb(run_id, members)), store)
    assert _nothing_written(store.root)


def test_an_archive_bigger_than_the_free_disk_is_refused(exported, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "free_bytes", lambda folder: 1000)
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ArchiveError, match="free"):
        import_runs(io.BytesIO(exported), store)
    assert _nothing_written(store.root)


def test_an_archive_of_too_many_files_or_runs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "MAX_FILES_PER_RUN", 10)
    run_id = "20260101-000000-resnet-8-many"
    many = {f"{run_id}/analysis/{i}.json": b"{}" for i in range(11)}
    with pytest.raises(ArchiveError, match="11 files"):
        import_runs(io.BytesIO(_bomb(run_id, many)), RunStore(tmp_path / "a"))
    monkeypatch.setattr(transfer, "MAX_RUNS", 3)
    ids = [f"20260101-000000-resnet-8-{i}" for i in range(4)]
    with pytest.raises(ArchiveError, match="4 runs"):
        import_runs(io.BytesIO(_bomb(ids[0], {f"{ids[0]}/config.json": b"{}"}, runs=ids)), RunStore(tmp_path / "b"))
    assert _nothing_written(tmp_path / "a" / "runs") and _nothing_written(tmp_path / "b")


def secrets_bytes(n: int) -> bytes:
    import os

    return os.urandom(n)


@pytest.mark.parametrize(
    "run_id",
    ["x" * 300, "run\x00id", "run\nid", " ", "a b", "-leading", "trailing.", "CON", "nul.txt", ""],
    ids=["300 characters", "NUL", "newline", "a lone space", "a space", "leading dash", "trailing dot", "CON", "nul"]
    + ["empty"],
)
def test_an_id_that_is_not_a_run_id_is_refused_with_one_line(tmp_path, capsys, run_id):
    archive = tmp_path / "odd.zip"
    archive.write_bytes(_bomb(run_id, {}, runs=[run_id]))
    assert main(["import", str(archive), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "not a run id" in err, err
    assert _nothing_written(tmp_path / "runs")


def test_the_store_makes_only_ids_its_own_rule_accepts(race_runs):
    from resexplorer.runs.store import run_id_problem

    assert all(run_id_problem(run.run_id) is None for run in race_runs)
    assert all(run_id_problem(run.run_id) is None for run in RunStore("assets/runs").list())


def test_two_imports_of_one_archive_at_once_leave_one_copy_and_say_already_there(exported, race_runs, tmp_path):
    """The other import lands the same run between this one's check and its
    rename: a clean 'already there', not ENOTEMPTY."""
    import os

    store = RunStore(tmp_path / "runs")
    real_rename, raced = os.rename, []

    def rename(source, target):
        if not raced:
            raced.append(target)
            os.rename = real_rename
            import_runs(io.BytesIO(exported), store)  # the other import, all the way through
        return real_rename(source, target)

    os.rename = rename
    try:
        report = import_runs(io.BytesIO(exported), store)
    finally:
        os.rename = real_rename
    assert raced and not report.imported
    assert all("already" in line and "not overwritten" in line for line in report.skipped), report.skipped
    assert sorted(p.name for p in store.root.iterdir()) == sorted(r.run_id for r in race_runs)
    assert all(store.get(r.run_id).kept_epochs() == r.kept_epochs() for r in race_runs)


def test_a_member_this_disk_cannot_write_refuses_its_run_with_a_line_not_a_traceback(tmp_path):
    """'r/a' and 'r/a/b' both files: the second cannot be written under the first."""
    run_id = "20260101-000000-resnet-8-clash"
    crafted = _bomb(run_id, {f"{run_id}/a": b"x", f"{run_id}/a/b": b"y"})
    report = import_runs(io.BytesIO(crafted), RunStore(tmp_path / "runs"))
    assert not report.imported and "cannot be written here" in report.skipped[0], report.skipped
    assert _nothing_written(tmp_path / "runs")
