"""Which process is which: a pid with its start time.

A pid alone is reused: after a restart the pid a run or job recorded may
belong to some other live process, and the run would read as running for
ever. A process is known by its pid and its start time (psutil, which also
works where os.kill(pid, 0) would send Windows a Ctrl+C).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SAME_START_S = 0.01  # start times are read to the clock tick


def this_process() -> dict:
    """{"pid", "started"} of this process, to record beside what it writes."""
    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def process_of(pid, started=None) -> psutil.Process | None:
    """The live process with this pid and, when given, this start time. A
    zombie (exited, never waited for: its parent gone where no init reaps
    orphans, as in a container) is dead, though psutil calls it running."""
    try:
        process = psutil.Process(int(pid))
        if started is not None and abs(process.create_time() - float(started)) > SAME_START_S:
            return None
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        return process if alive else None
    except (psutil.Error, ValueError, TypeError, OverflowError):
        return None


def start_time(pid: int) -> float | None:
    process = process_of(pid)
    return process.create_time() if process else None


def spawn_detached(command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start `command` (a Python command of this project) as a process of
    its own, in the project folder, its output in `log`: it goes on when
    the app's process ends (a new session on POSIX, a new process group on
    Windows, so a Ctrl+C in the app's terminal does not reach it). `env`
    adds to this process's environment."""
    python_path = [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    detached = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        if sys.platform == "win32"
        else {"start_new_session": True}
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **detached,
        )
