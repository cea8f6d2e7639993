"""Processes: which is which, starting one of our own, asking one to stop.

A pid alone is reused: after a restart the pid a run or job recorded may
belong to some other live process, and the run would read as running for
ever. A process is known by its pid and its start time (psutil, which also
works where os.kill(pid, 0) would send Windows a Ctrl+C).

Everything here that differs between POSIX and Windows (signals, process
groups, killing) is said here and nowhere else (tests/test_layers.py), so
the rest of the package runs the same on Linux, macOS and Windows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

# The folder this package is imported from: the clone, or site-packages once
# installed. A process we start imports the same package from it.
IMPORT_ROOT = Path(__file__).resolve().parents[1]

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
    its own, its output in `log`: it goes on when the app's process ends (a
    new session on POSIX, a new process group on Windows, so a Ctrl+C in the
    app's terminal does not reach it). It runs in this process's working
    folder, so a relative path (a data folder, RESEXPLORER_CACHE) means to
    it what it means here; installed, the package's own folder is
    site-packages, no place to work in. `env` adds to this process's
    environment."""
    python_path = [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    detached = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        if sys.platform == "win32"
        else {"start_new_session": True}
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **detached,
        )


def become(command: list[str]) -> int:
    """Run `command` in this process's place: on POSIX the process becomes
    it (exec: the same pid, so a Ctrl+C or a SIGTERM reaches it directly,
    and its exit code is this process's). Windows has no exec (os.exec*
    there starts a new process and ends this one at once, giving a console
    its prompt back while the command runs), so there it runs as a child and
    its exit code is returned."""
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.platform == "win32":
        return subprocess.call(command)
    os.execv(command[0], command)
    raise AssertionError("unreachable: execv returns only by raising")


def interrupt(pid: int) -> None:
    """Ask a process of ours to stop at its next step, as Ctrl+C would:
    SIGINT on POSIX. On Windows nothing is sent: os.kill with SIGINT is
    TerminateProcess there, which would end a training worker mid-write,
    and CTRL_BREAK_EVENT reaches a worker only while it shares this
    process's console (and ends it unless it takes SIGBREAK). A worker
    polls its cancel file every step, which is how it hears a Stop there."""
    if sys.platform != "win32":
        os.kill(pid, signal.SIGINT)


def die_now() -> None:
    """End this process at once, without cleanup or flushing, as `kill -9`
    or a power cut would: SIGKILL on POSIX; on Windows os.kill is
    TerminateProcess, as abrupt (the exit code says SIGTERM's number)."""
    os.kill(os.getpid(), signal.SIGTERM if sys.platform == "win32" else signal.SIGKILL)


def stop_signals() -> dict[signal.Signals, str]:
    """The signals that ask a process to end which this OS delivers, each
    with what it means: Ctrl+C, SIGTERM (the system or a process manager),
    and SIGHUP (its terminal closed), which Windows lacks."""
    meanings = {
        "SIGINT": "Ctrl+C (SIGINT)",
        "SIGTERM": "SIGTERM: the system or another program asked it to end",
        "SIGHUP": "SIGHUP: its terminal closed",
    }
    return {getattr(signal, name): meaning for name, meaning in meanings.items() if hasattr(signal, name)}
