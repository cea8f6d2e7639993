"""Runs that travel: run folders as one zip, trained somewhere, looked at
somewhere else (`export` / `import`, and the Runs page).

    runs.zip
      resexplorer-runs.json     format, version, the runs, and every file's
                                size and SHA-256
      <run_id>/config.json, metrics.jsonl, status.json, checkpoints/...,
      analysis/...              (the cached analyses, so pages open fast)

An archive is someone else's file: import takes nothing it has not checked.
From the archive's directory, before a byte is written: every run id
follows the store's rule (store.RUN_ID); every member is a plain file
listed in the manifest with the same size, inside one of its runs; and
the archive stays within caps that no real export comes near (MAX_RUNS
runs, MAX_FILES_PER_RUN files and MAX_RUN_BYTES per run, MAX_FILE_BYTES per
file, a compression ratio of at most MAX_RATIO, and room left on the disk),
so a zip bomb is refused unopened. Then each run is unpacked beside the
runs folder's runs, every byte counted against its checksum, its config,
checkpoints (weights_only) and cached analyses read back, before it is
renamed into place; a run id that exists already is never overwritten,
even by an import racing this one.
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

from .. import storage
from ..errors import DiskFullError, ResExplorerError, RunError
from ..storage import TEMP_SUFFIX, disk_full, nearest_folder, writable_folder
from .checks import analysis_kind, analysis_problem
from .states import RunState
from .store import (
    CHECKPOINT_SUFFIXES,
    RUN_MARKER,
    RUNS_FOLDER_REMEDY,
    WRITER_LOCK,
    Run,
    RunStore,
    run_id_problem,
)

ARCHIVE_FORMAT = "resexplorer-runs"
ARCHIVE_VERSION = 1
MANIFEST = "resexplorer-runs.json"
MAX_FILE_BYTES = 2 << 30  # one checkpoint of a very deep net is far below
MAX_RUN_BYTES = 8 << 30  # a run: its kept checkpoints (ResNet-1202's are about 0.3 GB), metrics, analyses
MAX_FILES_PER_RUN = 2000  # a shipped run has about 20 (checkpoints, metrics, cached analyses)
MAX_RUNS = 1000  # per archive
MAX_RATIO = 100  # uncompressed / compressed, for members over RATIO_FROM: real ones are below 10
RATIO_FROM = 64 << 10  # smaller members cannot make a bomb under the file count
DISK_RESERVE = 256 << 20  # left free after an import, for the jobs that may be writing there
MAX_MANIFEST_BYTES = 16 << 20
UPLOAD_MB = 200  # the largest archive the Runs page takes as an upload (the command line takes any)
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
        if path.name in (WRITER_LOCK, RUN_MARKER) or path.name.endswith(TEMP_SUFFIX):  # the importer marks its own
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
            if status.get("status") == RunState.RUNNING:
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
        files = _check_members(archive, manifest, label)
        _check_room(files, store.root, label)
        writable_folder(store.root, "the runs folder", RUNS_FOLDER_REMEDY)
        report = ImportReport()
        for run_id in manifest["runs"]:
            try:
                if (store.root / run_id).exists():
                    raise _AlreadyThere
                report.skipped.extend(_import_run(archive, files[run_id], run_id, store.root, label))
            except _AlreadyThere:
                report.skipped.append(f"{run_id} is in {store.root} already; not overwritten")
                continue
            except ArchiveError as err:  # this run is refused; the others are still looked at
                report.skipped.append(f"{run_id} not imported: {err}")
                continue
            report.imported.append(run_id)
    return report


class _AlreadyThere(Exception):
    """The run's id is in the runs folder already (or arrived during the import)."""


def _manifest(archive: zipfile.ZipFile, label: str) -> dict:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveError(f"{label} is not a ResNet Explorer export (no {MANIFEST})") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{label}: its {MANIFEST} is too large to be one")
    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError, RecursionError) as err:  # not UTF-8, not JSON, bad CRC, too deep
        raise ArchiveError(f"{label} is damaged: its {MANIFEST} cannot be read ({type(err).__name__})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{label} is not a ResNet Explorer export ({MANIFEST} has another format)")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > ARCHIVE_VERSION:
        raise ArchiveError(f"{label} was written by a newer ResNet Explorer; update to import it")
    runs, files = manifest.get("runs"), manifest.get("files")
    if not isinstance(runs, list) or not isinstance(files, dict) or not all(isinstance(r, str) for r in runs):
        raise ArchiveError(f"{label} is damaged: its {MANIFEST} lacks its list of runs or files")
    if len(runs) > MAX_RUNS:
        raise ArchiveError(f"{label} holds {len(runs):,} runs, over the {MAX_RUNS:,} one import takes; split it")
    if len(set(runs)) != len(runs):
        raise ArchiveError(f"{label} is damaged: its {MANIFEST} lists a run twice")
    for run_id in runs:
        problem = run_id_problem(run_id)
        if problem:
            shown = repr(run_id) if len(run_id) <= 60 else repr(run_id[:40]) + f"... ({len(run_id)} characters)"
            raise ArchiveError(f"{label}: {shown} is not a run id ({problem}); nothing was imported")
    for name, entry in files.items():
        sized = isinstance(entry, dict) and isinstance(entry.get("size"), int)
        if not sized or not isinstance(entry.get("sha256"), str):
            raise ArchiveError(f"{label} is damaged: {MANIFEST} has no size and checksum for {name}")
    return manifest


def _check_members(archive: zipfile.ZipFile, manifest: dict, label: str) -> dict[str, list[tuple[str, dict]]]:
    """Refuse the whole archive for one member out of place: a path that
    leads out of its run (zip-slip), a link, a file too big, unlisted, or
    compressed as only a bomb is; or a run over its caps. Returns each
    run's (name, manifest entry) pairs: the archive is read once, whatever
    its number of runs."""
    runs = set(manifest["runs"])
    files: dict[str, list[tuple[str, dict]]] = {run_id: [] for run_id in manifest["runs"]}
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
        entry = manifest["files"][name]
        if info.file_size > MAX_FILE_BYTES or entry["size"] > MAX_FILE_BYTES:
            raise ArchiveError(
                f"{label}: {name} is over the {MAX_FILE_BYTES >> 30} GiB a run's file may hold; nothing was imported"
            )
        if info.file_size != entry["size"]:
            raise ArchiveError(f"{label} is damaged: {name} is not the size its {MANIFEST} says; nothing was imported")
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ArchiveError(
                f"{label}: {name} would compress {info.file_size // max(info.compress_size, 1):,} to 1, as only a "
                "zip bomb does; nothing was imported"
            )
        files[parts[0]].append((name, entry))
    missing = sorted(set(manifest["files"]) - set(archive.namelist()))
    if missing:
        raise ArchiveError(f"{label} is damaged: {', '.join(missing[:3])} listed but missing; nothing was imported")
    for run_id, members in files.items():
        if len(members) > MAX_FILES_PER_RUN:
            raise ArchiveError(
                f"{label}: {run_id} holds {len(members):,} files, more than the {MAX_FILES_PER_RUN:,} a run may; "
                "nothing was imported"
            )
        size = sum(entry["size"] for _, entry in members)
        if size > MAX_RUN_BYTES:
            raise ArchiveError(
                f"{label}: {run_id} would unpack to {size / 2**30:.1f} GiB, more than a run may hold "
                f"({MAX_RUN_BYTES >> 30} GiB); nothing was imported"
            )
    return files


def _check_room(files: dict[str, list[tuple[str, dict]]], root: Path, label: str) -> None:
    """The whole archive unpacked must leave DISK_RESERVE free where the runs go."""
    size = sum(entry["size"] for members in files.values() for _, entry in members)
    free = storage.free_bytes(nearest_folder(root))
    if size + DISK_RESERVE > free:
        raise ArchiveError(
            f"{label} would unpack to {size / 2**20:,.0f} MB, and {root} has {free / 2**20:,.0f} MB free "
            f"(an import leaves {DISK_RESERVE >> 20} MB); free some space, or import into another runs folder"
        )


def _import_run(
    archive: zipfile.ZipFile, members: list[tuple[str, dict]], run_id: str, root: Path, label: str
) -> list[str]:
    """Unpack one run in a hidden folder of the runs folder, check it, then
    rename it into place (the same disk, so the rename is one step).
    Returns what was left out of it (cached analyses of the wrong shape)."""
    staging = root / f"{IMPORTING}{secrets.token_hex(4)}"
    try:
        staged = staging / run_id
        try:
            staged.mkdir(parents=True)
            for name, entry in members:
                _extract(archive, name, entry, staging / name, label)
        except OSError as err:
            if disk_full(err, root):
                raise DiskFullError(f"no space left on {root}: {run_id} was not imported; free some space") from err
            # a member this disk cannot hold as named (too long, a file where its folder goes, a name
            # this OS refuses): this run is refused, the others are still looked at
            raise ArchiveError(f"its files cannot be written here ({err.strerror or err})") from err
        from .checkpoints import load_checkpoint  # torch: only once there is something to check

        run = Run(staged)
        try:
            run.config()
            for path in sorted(run.checkpoint_dir.glob("*")):
                if path.name.endswith(CHECKPOINT_SUFFIXES):
                    load_checkpoint(path)  # weights_only, checksum and structure: refused here, not later
        except ResExplorerError as err:
            raise ArchiveError(str(err)) from err
        dropped = _drop_misshapen_analyses(run)
        run.mark()  # checked: now it proves it is a run
        _place(staged, root / run_id)
        return dropped
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _drop_misshapen_analyses(run: Run) -> list[str]:
    """Cached analyses are a cache: one the pages could not draw is left
    out of the import (the run is not), and recomputed when asked for."""
    dropped = []
    for path in sorted((run.path / "analysis").rglob("*.json")):
        kind = analysis_kind(path.stem + path.suffix)
        try:
            problem = analysis_problem(kind, json.loads(path.read_bytes().decode("utf-8")))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than a parser goes
            problem = "is not valid JSON"
        if problem:
            path.unlink()
            where = path.relative_to(run.path).as_posix()
            dropped.append(f"{run.run_id}: its cached {where} {problem}; left out (recomputed when needed)")
    return dropped


def _place(staged: Path, target: Path) -> None:
    """Rename a checked run into place, never over a run of that id: one
    that arrived meanwhile (another import of the same archive, say) makes
    the rename fail, which is the check that cannot race."""
    if target.exists():
        raise _AlreadyThere
    try:
        os.rename(staged, target)
    except OSError as err:
        if target.exists():  # ENOTEMPTY or EEXIST (POSIX), FileExistsError (Windows): the other one won
            raise _AlreadyThere from None
        raise ArchiveError(f"it could not be moved into {target.parent} ({err.strerror or err})") from err


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
