"""Atomic file writes: a reader or a crash never sees half a file.

Write to a temporary file in the same folder, fsync, then rename over the
target (rename is atomic on POSIX and on Windows via os.replace).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".tmp"  # a write in progress: ".<name>.<random>.tmp" beside its target


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(data: bytes, path: Path) -> None:
    atomic_write(path, lambda handle: handle.write(data))


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
