"""Atomic file writes: a reader or a crash never sees half a file.

Write to a temporary file in the same folder, fsync, then rename over the
target (rename is atomic on POSIX and on Windows via os.replace).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import filelock

from . import faults
from .errors import DiskFullError, FolderError

FULL_BELOW = 1 << 20  # bytes free under which a failed write counts as a full disk
TEMP_SUFFIX = ".tmp"  # a write in progress: ".<name>.<random>.tmp" beside its target


# What to do when the user cache cannot hold what the app keeps there.
CACHE_REMEDY = (
    "set RESEXPLORER_CACHE to a folder you can write to (the training queue and the machine's lock live there)"
)


def default_cache_dir() -> Path:
    """The user cache: decoded data sets, analyses of shipped runs, the
    machine's training lock (RESEXPLORER_CACHE, else ~/.cache/resexplorer)."""
    env = os.environ.get("RESEXPLORER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "resexplorer"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], kill_point: str | None = None) -> None:
    """kill_point: the faults.py point reached once the temporary file is
    complete and not yet renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if kill_point:
            faults.point(kill_point)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if disk_full(err, path.parent):
            raise DiskFullError(
                f"no space left on {path.parent}: {path.name} was not written"
                f"{' (the previous one is kept)' if existed else ''}; "
                "free some space, or choose a folder on another disk"
            ) from err
        raise


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space. torch.save's zip writer says
    so only as 'unexpected pos', so the free space is asked too."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, (OSError, RuntimeError)):
        try:
            return free_bytes(folder) < FULL_BELOW
        except OSError:
            return False
    return False


def atomic_write_bytes(data: bytes, path: Path, kill_point: str | None = None) -> None:
    atomic_write(path, lambda handle: handle.write(data), kill_point)


def atomic_write_json(obj, path: Path) -> None:
    data = json.dumps(obj, indent=2, sort_keys=True).encode()
    atomic_write(path, lambda handle: handle.write(data))


def nearest_folder(path: Path) -> Path:
    """The folder itself or, while it does not exist yet, its nearest
    existing ancestor: where its free space is asked."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if path.is_dir() else path.parent


def _trouble(err: OSError, folder: Path) -> str:
    """What is wrong with a folder, in words, from the error using it gave."""
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return "is a file, not a folder" if blocker == folder else f"cannot be made: {blocker} is a file"
    if err.errno == errno.EROFS:
        return "is on a read-only disk"
    if isinstance(err, PermissionError):
        return "cannot be written to (permission denied)"
    return f"cannot be used ({err.strerror or err})"


@contextlib.contextmanager
def folder_in_use(folder: Path, role: str, remedy: str) -> Iterator[None]:
    """Use a folder (make it, write in it), an OSError becoming one line
    that names it and what to do: FolderError('the runs folder X is a file,
    not a folder; choose another runs folder'). A full disk stays a
    DiskFullError."""
    folder = Path(folder)
    try:
        yield
    except (DiskFullError, FolderError):
        raise
    except OSError as err:
        if disk_full(err, nearest_folder(folder)):
            raise DiskFullError(
                f"no space left on {folder}; free some space, or choose a folder on another disk"
            ) from err
        raise FolderError(f"{role} {folder} {_trouble(err, folder)}; {remedy}") from err


def writable_folder(folder: Path, role: str, remedy: str) -> Path:
    """The folder, made if missing and proven writable (a file made and
    removed in it), or FolderError: asked before work that would write
    there, so the user hears of it before the data set loads."""
    folder = Path(folder)
    with folder_in_use(folder, role, remedy):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    return folder


def remove_leftovers(folder: Path) -> int:
    """Delete the half-written files a killed writer left in a folder; only
    call it while no one else writes there. Returns how many went."""
    leftovers = list(Path(folder).glob(f".*{TEMP_SUFFIX}"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


class HeldLock:
    """An exclusive OS file lock, held until released or until the process
    ends (so a killed holder frees it). `busy` makes the error raised when
    another holder has it, in this process or another; with `wait`, it is
    waited for instead. filelock takes the OS's own lock (flock on POSIX,
    msvcrt.locking on Windows), so this module makes no OS-specific call."""

    def __init__(self, path: Path, busy: Callable[[], Exception] | None = None, wait: bool = False):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not thread-local: a claim may be released by another thread than
        # the one that took it, and a thread-local lock would then release
        # nothing, leaving the run or the machine claimed until exit.
        self._lock: filelock.BaseFileLock | None = filelock.FileLock(path, thread_local=False)
        try:
            self._lock.acquire(timeout=-1 if wait else 0)
        except filelock.Timeout:
            self._lock = None
            raise busy() from None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
