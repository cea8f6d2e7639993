"""Atomic file writes: a reader or a crash never sees half a file.

Write to a temporary file in the same folder, fsync, then rename over the
target (rename is atomic on POSIX and on Windows via os.replace).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import faults
from .errors import DiskFullError

FULL_BELOW = 1 << 20  # bytes free under which a failed write counts as a full disk
TEMP_SUFFIX = ".tmp"  # a write in progress: ".<name>.<random>.tmp" beside its target


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


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space. torch.save's zip writer says
    so only as 'unexpected pos', so the free space is asked too."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, (OSError, RuntimeError)):
        try:
            return _free_bytes(folder) < FULL_BELOW
        except OSError:
            return False
    return False


def atomic_write_bytes(data: bytes, path: Path, kill_point: str | None = None) -> None:
    atomic_write(path, lambda handle: handle.write(data), kill_point)


def atomic_write_json(obj, path: Path) -> None:
    data = json.dumps(obj, indent=2, sort_keys=True).encode()
    atomic_write(path, lambda handle: handle.write(data))


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
    another holder has it."""

    def __init__(self, path: Path, busy: Callable[[], Exception]):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a")  # held past this call, so not in a with
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise busy() from None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
