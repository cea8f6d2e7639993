"""Runs that travel: run folders as one zip, trained somewhere, looked at
somewhere else (`export` / `import`, and the Runs page).

    runs.zip
      resexplorer-runs.json     format, version, the runs, and every file's
                                size and SHA-256
      <run_id>/config.json, metrics.jsonl, status.json, checkpoints/...,
      analysis/...              (the cached analyses, so pages open fast)

An archive is someone else's file: import takes nothing it has not checked.
Every member must be a plain file listed in the manifest, inside one of its
runs, no bigger than MAX_FILE_BYTES, and match its checksum; a run is
unpacked beside the runs folder's runs, its config and every checkpoint
read back (weights_only) before it is renamed into place, and a run id
that exists already is never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import DiskFullError, ResExplorerError, RunError
from ..storage import TEMP_SUFFIX, disk_full
from .store import CHECKPOINT_SUFFIXES, WRITER_LOCK, Run, RunStore

ARCHIVE_FORMAT = "resexplorer-runs"
ARCHIVE_VERSION = 1
MANIFEST = "resexplorer-runs.json"
MAX_FILE_BYTES = 2 << 30  # one checkpoint of a very deep net is far below
MAX_MANIFEST_BYTES = 16 << 20
CHUNK = 1 << 20
IMPORTING = ".importing-"  # the hidden folder a run is unpacked in before it is renamed into place


class ArchiveError(ResExplorerError):
    """An archive of runs that cannot be imported; the message says why."""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why, one line each


# --- export --------------------------------------------------------------------


def _run_files(run: Run) -> list[Path]:
    """The files that make a run: never its lock, a half-written temporary
    file or a link (what it points at is not the run's)."""
    files = []
    for path in sorted(run.path.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if path.name == WRITER_LOCK or path.name.endswith(TEMP_SUFFIX):
            continue
        files.append(path)
    return files


def export_runs(runs: list[Run], target: str | Path | BinaryIO) -> dict:
    """Write these runs into one zip; returns its manifest. A run still
    training is refused: export it once it stops. (Every file is read once
    and its checksum taken from the bytes sent, so the archive agrees with
    itself even if the run were resumed meanwhile.)"""
    if not runs:
        raise RunError("no runs to export")
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):
        raise RunError("a run can be exported once per archive")
    manifest: dict = {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "runs": ids, "files": {}}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for run in runs:
            run.config()  # a damaged run is not sent on
            status = run.status()
            if status.get("status") == "running":
                raise RunError(f"{run.run_id} is still training; export it once it stops")
            for path in _run_files(run):
                name = f"{run.run_id}/{path.relative_to(run.path).as_posix()}"
                # The status as it reads here: a run whose process died reads
                # 'interrupted' there too, not the 'running' its file says.
                data = json.dumps(status).encode() if path == run.status_path else path.read_bytes()
                archive.writestr(name, data)
                manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def archive_bytes(runs: list[Run]) -> bytes:
    """export_runs into memory: what a download hands the browser."""
    buffer = io.BytesIO()
    export_runs(runs, buffer)
    return buffer.getvalue()


# --- import --------------------------------------------------------------------


def import_runs(source: str | Path | BinaryIO, store: RunStore, label: str | None = None) -> ImportReport:
    """Bring the runs of an archive into a store, each checked first; runs
    whose id the store has already are skipped, never overwritten."""
    label = label or (str(source) if isinstance(source, (str, Path)) else "the archive")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ArchiveError(f"{label} is not a readable zip archive ({err})") from err
    with archive:
        manifest = _manifest(archive, label)
        _check_members(archive, manifest, label)
        store.root.mkdir(parents=True, exist_ok=True)
        report = ImportReport()
        for run_id in manifest["runs"]:
            if (store.root / run_id).exists():
                report.skipped.append(f"{run_id} is in {store.root} already; not overwritten")
                continue
            try:
                _import_run(archive, manifest, run_id, store.root, label)
            except ArchiveError as err:  # this run is refused; the others are still looked at
                report.skipped.append(f"{run_id} not imported: {err}")
                continue
            report.imported.append(run_id)
    return report


def _manifest(archive: zipfile.ZipFile, label: str) -> dict:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveError(f"{label} is not a ResNet Explorer export (no {MANIFEST})") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{label}: its {MANIFEST} is too large to be one")
    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError) as err:  # ValueError: not UTF-8, not JSON, bad CRC
        raise ArchiveError(f"{label} is damaged: its {MANIFEST} cannot be read ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{label} is not a ResNet Explorer export ({MANIFEST} has another format)")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > ARCHIVE_VERSION:
        raise ArchiveError(f"{label} was written by a newer ResNet Explorer; update to import it")
    runs, files = manifest.get("runs"), manifest.get("files")
    if not isinstance(runs, list) or not isinstance(files, dict) or not all(isinstance(r, str) for r in runs):
        raise ArchiveError(f"{label} is damaged: its {MANIFEST} lacks its list of runs or files")
    for run_id in runs:
        if not _plain_name(run_id):
            raise ArchiveError(f"{label}: {run_id!r} is not a run id (a single plain folder name)")
    for name, entry in files.items():
        sized = isinstance(entry, dict) and isinstance(entry.get("size"), int)
        if not sized or not isinstance(entry.get("sha256"), str):
            raise ArchiveError(f"{label} is damaged: {MANIFEST} has no size and checksum for {name}")
    return manifest


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not name.startswith(".") and "/" not in name and "\\" not in name


def _check_members(archive: zipfile.ZipFile, manifest: dict, label: str) -> None:
    """Refuse the whole archive for one member out of place: a path that
    leads out of its run (zip-slip), a link, a file too big or unlisted."""
    runs = set(manifest["runs"])
    for info in archive.infolist():
        name = info.filename
        if name == MANIFEST or info.is_dir():
            continue
        parts = PurePosixPath(name).parts
        if (
            name.startswith("/")
            or "\\" in name
            or ":" in parts[0]
            or any(part in ("..", ".", "") for part in parts)
            or len(parts) < 2
            or parts[0] not in runs
        ):
            raise ArchiveError(f"{label}: {name!r} lies outside the runs it lists; nothing was imported")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(f"{label}: {name} is a link; links are never imported, so nothing was")
        if name not in manifest["files"]:
            raise ArchiveError(f"{label}: {name} is not in its {MANIFEST}; nothing was imported")
        if info.file_size > MAX_FILE_BYTES or manifest["files"][name]["size"] > MAX_FILE_BYTES:
            raise ArchiveError(
                f"{label}: {name} is over the {MAX_FILE_BYTES >> 30} GiB a run's file may hold; nothing was imported"
            )
    missing = sorted(set(manifest["files"]) - set(archive.namelist()))
    if missing:
        raise ArchiveError(f"{label} is damaged: {', '.join(missing[:3])} listed but missing; nothing was imported")


def _import_run(archive: zipfile.ZipFile, manifest: dict, run_id: str, root: Path, label: str) -> None:
    """Unpack one run in a hidden folder of the runs folder, check it, then
    rename it into place (the same disk, so the rename is one step)."""
    staging = root / f"{IMPORTING}{secrets.token_hex(4)}"
    try:
        staged = staging / run_id
        try:
            for name, entry in manifest["files"].items():
                if name.split("/", 1)[0] == run_id:
                    _extract(archive, name, entry, staging / name, label)
        except OSError as err:
            if disk_full(err, root):
                raise DiskFullError(f"no space left on {root}: {run_id} was not imported; free some space") from err
            raise
        from .checkpoints import load_checkpoint  # torch: only once there is something to check

        run = Run(staged)
        try:
            run.config()
            for path in sorted(run.checkpoint_dir.glob("*")):
                if path.name.endswith(CHECKPOINT_SUFFIXES):
                    load_checkpoint(path)  # weights_only, checksum and structure: refused here, not later
        except ResExplorerError as err:
            raise ArchiveError(str(err)) from err
        if (root / run_id).exists():  # arrived meanwhile: still never overwritten
            raise ArchiveError(f"it appeared in {root} during the import; not overwritten")
        os.rename(staged, root / run_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: zipfile.ZipFile, name: str, entry: dict, target: Path, label: str) -> None:
    """One member to its file, read in chunks and counted: a member whose
    header lies about its size, or whose bytes do not match the manifest's
    checksum, stops the import."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        try:
            member = archive.open(name)
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise ArchiveError(f"{label} is damaged: {name} cannot be read ({err})") from err
        with member:
            while True:
                try:
                    chunk = member.read(CHUNK)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:  # bad CRC, cut short
                    raise ArchiveError(f"{label} is damaged: {name} cannot be read ({err})") from err
                if not chunk:
                    break
                size += len(chunk)
                if size > entry["size"]:
                    raise ArchiveError(f"{label}: {name} holds more than its manifest says")
                digest.update(chunk)
                out.write(chunk)  # a full disk raises here, as itself
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise ArchiveError(f"{label} is damaged: {name} does not match its checksum")
