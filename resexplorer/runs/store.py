"""The run store: one folder per trained model, readable while it grows.

    runs/<run_id>/
      .resexplorer-run   the marker, written first: this folder is a run, so
                         the store may delete it (RUN_MARKER)
      config.json        model, training and data settings, library versions
      metrics.jsonl      one JSON record per event, appended and flushed
      status.json        running | done | cancelled | diverged | failed
      checkpoints/
        epoch-NNNN.pt    kept moments (initialisation, epoch 1, middle, end)
                         and the newest committed epoch, to resume from

The end of an epoch is one commit: its checkpoint is written first, under
its own name, then its record is appended to metrics.jsonl, and only then
is the previous epoch's checkpoint removed (unless kept). An epoch counts
once its record is there, so a process killed at any point leaves metrics
and checkpoints that agree: a checkpoint newer than the last record is an
uncommitted leftover, ignored by readers and removed on resume. (Run
folders written before this keep their newest epoch in last.pt.)

A folder is the store's to delete only if it proves it is a run: its
marker, or (folders made before the marker) a config that reads whole as a
run's. A runs folder may be pointed at anything, and other programs'
folders are named as "not a run" and left alone, however much they look
like runs. Run ids follow one rule (RUN_ID), checked wherever an id comes
from outside (an imported archive); ids and `created` read the same clock,
UTC, so runs sort in the order they were made wherever they were made.

Every write that replaces a file is atomic (storage.py); metrics only grow.
A run whose status says running but whose process is gone reads as
'interrupted' and resumes from its newest committed epoch. Plain files
only: reading a run needs no torch (checkpoints.py reads the checkpoints).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import shutil
import socket
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from .. import faults
from ..errors import RunDamaged, RunError
from ..nets.config import ModelConfig
from ..processes import process_of, this_process
from ..storage import HeldLock, atomic_write_bytes, atomic_write_json, folder_in_use, remove_leftovers
from .checks import config_problem, describe_problems, parse_metrics
from .recipe import RunOptions, TrainConfig
from .states import RunState

RUN_FORMAT = "resexplorer-run"
FORMAT_VERSION = 1  # of run folders and of checkpoints
CHECKPOINT_SUFFIXES = (".pt", ".pt.xz")  # .pt.xz: compact shipped checkpoints
WRITER_LOCK = "writer.lock"  # held by the one process writing a run (Run.writer)
LEGACY_LAST = "last.pt"  # the newest epoch of run folders written before epoch commits
RUNS_FOLDER_REMEDY = "choose another runs folder (the sidebar's Runs folder, or --runs)"
RUN_FOLDER_REMEDY = "make it writable, or copy the run into a runs folder you can write to"
RUN_MARKER = ".resexplorer-run"  # written first into every run folder the store makes
MARKER_TEXT = f"{RUN_FORMAT}\n".encode()  # what the marker holds: any other content proves nothing
RUN_FILES = ("config.json", "metrics.jsonl", "status.json")  # what makes a folder look like a run
# A run id: the store's own `<UTC stamp>-<model name>-<6 hex>`, or any name
# of the same alphabet; a plain folder name on every OS (no separators, no
# dot or space at either end, nothing a file system refuses), short enough
# for any path limit.
RUN_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,118}[A-Za-z0-9])?")
RUN_ID_MAX = 120
# Names Windows reserves for devices, whatever follows the dot.
RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def _command_line() -> str:
    """How this process was started, without this machine's paths."""
    program = "python -m resexplorer" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    return " ".join([program, *sys.argv[1:]])


def utc_now() -> datetime:
    """The one clock of run ids and `created` (and job ids): UTC, so runs
    made under different time zones still sort in the order they were made."""
    return datetime.now(timezone.utc)


def _now() -> str:
    return utc_now().isoformat(timespec="seconds")


def id_stamp() -> str:
    """The time part of a run or job id."""
    return utc_now().strftime("%Y%m%d-%H%M%S")


def run_id_problem(run_id) -> str | None:
    """Why this is not a run id (RUN_ID), or None: checked where an id comes
    from outside, before it names a folder."""
    if not isinstance(run_id, str) or not run_id:
        return "a run id is a non-empty name"
    if len(run_id) > RUN_ID_MAX:
        return f"a run id is at most {RUN_ID_MAX} characters; this one has {len(run_id)}"
    if not RUN_ID.fullmatch(run_id):
        return "a run id is letters, digits, '.', '_' and '-', starting and ending with a letter or digit"
    if run_id.split(".")[0].lower() in RESERVED_NAMES:
        return f"{run_id.split('.')[0]} is a name Windows reserves for a device"
    return None


def middle_epoch(epochs: int) -> int:
    """The kept "middle" of a run of this many epochs."""
    return max(1, round(epochs / 2))


def epochs_to_keep(epochs: int) -> set[int]:
    """The moments a run of this many epochs keeps a checkpoint of:
    initialisation, first epoch, middle, end (Run.kept_epochs: those on disk)."""
    return {0, 1, middle_epoch(epochs), epochs}


# --- one run --------------------------------------------------------------------


@dataclass(frozen=True)
class DamagedRun:
    """A run folder whose config cannot be read, and what is wrong with it."""

    run_id: str
    path: Path
    problem: str


@dataclass(frozen=True)
class NotARun(DamagedRun):
    """A folder with files a run has, that does not prove it is one: named
    so it does not vanish without a word, and never deleted."""


class Scan(NamedTuple):
    """What a runs folder holds."""

    runs: list[Run]  # readable runs, oldest first
    damaged: list[DamagedRun]  # runs (proven by their marker) whose config cannot be read
    not_runs: list[NotARun]  # folders with run files that are not provably runs


# metrics file -> (its version, its records, its problems): pages read a
# run's metrics many times a rerun; a file is parsed once per version.
_METRICS: dict[Path, tuple[tuple, list[dict], list[str]]] = {}
_METRICS_KEPT = 64  # files remembered (the oldest read is forgotten first)
_METRICS_LOCK = threading.Lock()


def _file_version(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class _ConfigCache:
    """Checked configs by path, each with the (inode, mtime, size) of the
    file it was read from; a rewrite (atomic: a new inode) is read afresh.
    Bounded, shared by the server's threads; hands out copies."""

    LIMIT = 4096  # runs' configs kept: a few KB each

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, tuple[tuple, dict]] = OrderedDict()

    def get(self, path: Path, key: tuple | None) -> dict | None:
        with self._lock:
            entry = self._entries.get(path)
            if key is None or entry is None or entry[0] != key:
                return None
            self._entries.move_to_end(path)
            return copy.deepcopy(entry[1])

    def put(self, path: Path, key: tuple, config: dict) -> None:
        with self._lock:
            self._entries[path] = (key, copy.deepcopy(config))
            self._entries.move_to_end(path)
            while len(self._entries) > self.LIMIT:
                self._entries.popitem(last=False)


_CONFIGS = _ConfigCache()


class Run:
    """A run folder. Cheap to create: reads happen when asked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.run_id = self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def marker_path(self) -> Path:
        return self.path / RUN_MARKER

    def marked(self) -> bool:
        """Whether the store's own marker is here (see provably_a_run)."""
        try:
            return self.marker_path.read_bytes() == MARKER_TEXT
        except OSError:
            return False

    def mark(self) -> None:
        atomic_write_bytes(MARKER_TEXT, self.marker_path)

    def provably_a_run(self) -> bool:
        """Whether this folder proves it is a run, so is the store's to
        delete: its marker, or (a folder made before the marker) a config
        that reads whole as a run's. A damaged run without its marker
        proves nothing: it is left for its owner to delete."""
        if self.marked():
            return True
        try:
            self.config()
        except RunError:
            return False
        return True

    def writer(self) -> HeldLock:
        """Claim the run for writing (training it, resuming it) until
        released or the process ends; a second claim raises RunError."""
        return HeldLock(
            self.path / WRITER_LOCK,
            lambda: RunError(
                f"{self.run_id} is being trained by another process or job; wait for it to end, or stop it, first"
            ),
        )

    def config(self) -> dict:
        """The run's settings, checked: RunDamaged says what is wrong with a
        config.json that cannot be used, RunError that there is no run here.
        Read and checked once per version of the file (_CONFIGS): the pages
        ask for every run's config at every rerun."""
        try:
            seen = self.config_path.stat()
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run folder (no config.json)") from None
        except OSError:
            seen = None  # said below, by the read
        key = (seen.st_ino, seen.st_mtime_ns, seen.st_size) if seen else None
        cached = _CONFIGS.get(self.config_path, key)
        if cached is not None:
            return cached
        config = self._read_config()
        if key:
            _CONFIGS.put(self.config_path, key, config)  # a copy: the caller may change its own
        return config

    def _read_config(self) -> dict:
        try:
            raw = self.config_path.read_bytes()
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run folder (no config.json)") from None
        except OSError as err:
            raise RunDamaged(f"{self.run_id} is damaged: its config.json is unreadable ({err.strerror})") from err
        try:
            config = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "config.json is not UTF-8 text"
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested deeper than a parser goes
            problem = "config.json is not valid JSON (cut short?)"
        else:
            if not isinstance(config, dict):
                problem = "config.json is not a JSON object"
            elif config.get("format") != RUN_FORMAT:
                raise RunError(f"{self.path} is not a ResNet Explorer run folder")
            else:
                problem = config_problem(config)
        if problem:
            raise RunDamaged(f"{self.run_id} is damaged: {problem}; restore that file or delete the run")
        return config

    def update_config(self, changes: dict) -> None:
        atomic_write_json({**self.config(), **changes}, self.config_path)

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.config()["model"])

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config()["train"])

    def run_options(self) -> RunOptions:
        """How the run ran (runs made before "ran" was kept apart held these
        in "train")."""
        config = self.config()
        return RunOptions.from_dict(config.get("ran", config["train"]))

    # metrics
    def append_metric(self, record: dict, torn_point: str | None = None) -> None:
        """Append one record; torn_point: the faults.py point that kills this
        process with half the line written, as a crash mid-write would."""
        line = json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            if torn_point and faults.due(torn_point):
                handle.write(line[: len(line) // 2])
                handle.flush()
                faults.kill()
            handle.write(line)
            handle.flush()

    def metrics(self, kind: str | None = None) -> list[dict]:
        """All usable records, or those of one kind ('train', 'epoch'). A
        line that is not one (problems() names it) is skipped, as is the
        unfinished last line a killed writer leaves."""
        records, _ = self._read_metrics()
        return [r for r in records if kind is None or r.get("kind") == kind]

    def problems(self) -> list[str]:
        """What readers of this run skip as damaged: metrics lines that are
        not usable records (a torn last line is not damage: kills leave one)."""
        return describe_problems(self._read_metrics()[1])

    def _read_metrics(self) -> tuple[list[dict], list[str]]:
        """(records, problems), parsed once per version of the file (it only
        grows, or is replaced whole)."""
        try:
            version = _file_version(self.metrics_path)
            with _METRICS_LOCK:  # the app's sessions read from threads of their own
                known = _METRICS.pop(self.metrics_path, None)
            if known is None or known[0] != version:
                known = (version, *parse_metrics(self.metrics_path.read_bytes()))
        except FileNotFoundError:
            return [], []
        with _METRICS_LOCK:
            _METRICS[self.metrics_path] = known  # (re)inserted last: the most recently read
            while len(_METRICS) > _METRICS_KEPT:
                del _METRICS[next(iter(_METRICS))]
        return known[1], known[2]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past a checkpoint's step, before resuming from it."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= after_step]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
        atomic_write_bytes(text.encode("utf-8"), self.metrics_path)

    def committed_epoch(self) -> int:
        """The newest epoch whose record is in the metrics: 0 before the first."""
        records, _ = self._read_metrics()
        return next((r["epoch"] for r in reversed(records) if r.get("kind") == "epoch"), 0)

    def remove_leftovers(self) -> int:
        """What a killed writer left (hold the writer claim): half-written
        files, checkpoints of epochs never committed, and a previous epoch's
        checkpoint that its successor's commit did not get to remove."""
        count = remove_leftovers(self.path) + remove_leftovers(self.checkpoint_dir)
        committed, keep = self.committed_epoch(), self._epochs_kept_by_rule()
        for epoch, path in self._epoch_files():
            if path.suffix == ".pt" and (epoch > committed or (epoch < committed and epoch not in keep)):
                path.unlink()
                count += 1
        legacy = self.checkpoint_dir / LEGACY_LAST
        if legacy.exists() and self._epoch_file(committed).exists():
            legacy.unlink()  # superseded by a committed epoch
            count += 1
        return count

    # status
    def set_status(self, status: str, message: str = "") -> None:
        atomic_write_json(
            {"status": status, "message": message, **this_process(), "host": socket.gethostname(), "updated": _now()},
            self.status_path,
        )

    def status(self) -> dict:
        """The status record; 'running' whose process is gone reads 'interrupted'."""
        try:
            record = json.loads(self.status_path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("status"), str):
            return {"status": RunState.INTERRUPTED, "message": "no readable status: the run was stopped while starting"}
        if record.get("status") == RunState.RUNNING and record.get("host") == socket.gethostname():
            if process_of(record.get("pid"), record.get("started")) is None:
                record = {
                    **record,
                    "status": RunState.INTERRUPTED,
                    "message": "the training process ended without finishing; "
                    "resume continues from the last completed epoch",
                }
        return record

    # checkpoints
    def checkpoint_path(self, which: str | int = "last") -> Path:
        """The file of an epoch's checkpoint, or of 'last': the newest
        committed epoch's, else (older run folders) last.pt, else (a packed
        run of an epoch it did not keep) its newest kept epoch's."""
        if isinstance(which, int) or str(which).isdigit():
            return self._epoch_file(int(which))
        if which != "last":
            raise RunError(f"no checkpoint called {which!r}: ask for 'last' or an epoch number")
        latest = self.latest_checkpoint()
        if latest is not None:
            return latest
        kept = self.kept_epochs()
        return self._epoch_file(kept[-1] if kept else self.committed_epoch())

    def latest_checkpoint(self) -> Path | None:
        """The newest committed epoch's checkpoint (an older folder's
        last.pt), or None where only kept moments remain (a packed run)."""
        for path in (self._epoch_file(self.committed_epoch()), self.checkpoint_dir / LEGACY_LAST):
            if path.exists():
                return path
        return None

    def retire_checkpoint(self, epoch: int) -> None:
        """Remove an epoch's checkpoint once a newer epoch is committed,
        unless it is a kept moment (and older folders' last.pt with it)."""
        if epoch not in self._epochs_kept_by_rule():
            (self.checkpoint_dir / f"epoch-{epoch:04d}.pt").unlink(missing_ok=True)
        (self.checkpoint_dir / LEGACY_LAST).unlink(missing_ok=True)

    def _epoch_file(self, epoch: int) -> Path:
        stem = f"epoch-{epoch:04d}"
        for suffix in CHECKPOINT_SUFFIXES:
            if (self.checkpoint_dir / f"{stem}{suffix}").exists():
                return self.checkpoint_dir / f"{stem}{suffix}"
        return self.checkpoint_dir / f"{stem}.pt"

    def _epoch_files(self) -> list[tuple[int, Path]]:
        """(epoch, file) of every epoch-NNNN checkpoint on disk."""
        files = []
        for path in self.checkpoint_dir.glob("epoch-*.pt*"):
            number = path.name.split(".")[0].removeprefix("epoch-")
            if number.isdigit() and path.name.endswith(CHECKPOINT_SUFFIXES):
                files.append((int(number), path))
        return sorted(files)

    def _epochs_kept_by_rule(self) -> set[int]:
        return epochs_to_keep(self.config()["train"]["epochs"])

    def kept_epochs(self) -> list[int]:
        """The kept moments on disk (epochs_to_keep), committed ones only."""
        committed, keep = self.committed_epoch(), self._epochs_kept_by_rule()
        return sorted({epoch for epoch, _ in self._epoch_files() if epoch <= committed and epoch in keep})

    def summary(self) -> dict:
        """One row for a run table."""
        config = self.config()
        epochs = self.metrics("epoch")
        tested = [e["test_error"] for e in epochs if e.get("test_error") is not None]
        status = self.status()
        return {
            "run_id": self.run_id,
            "model": config["model_name"],
            "status": status.get("status"),
            "message": status.get("message", ""),
            "epochs_done": epochs[-1]["epoch"] if epochs else 0,
            "epochs": config["train"]["epochs"],
            "final_test_error": tested[-1] if tested else None,
            "best_test_error": min(tested) if tested else None,
            "final_train_error": epochs[-1]["train_error"] if epochs else None,
            "created": config.get("created"),
            "problems": self.problems(),
        }


# --- the store ---------------------------------------------------------------------


class RunStore:
    """A folder of runs. Two processes creating runs never collide: each run
    folder is made with an exclusive mkdir under a random id."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Path(root).expanduser()  # "~/runs", as the data path takes it

    def create(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        data_info: dict,
        extra: dict | None = None,
        options: RunOptions | None = None,
    ) -> Run:
        """A new run folder; `extra` adds to its config (versions, group...);
        `options`: how it runs (the defaults if not said)."""
        stamp = id_stamp()
        with folder_in_use(self.root, "the runs folder", RUNS_FOLDER_REMEDY):
            self.root.mkdir(parents=True, exist_ok=True)
            for _ in range(20):
                run_id = f"{stamp}-{model_config.name}-{secrets.token_hex(3)}"
                if run_id_problem(run_id):
                    raise RunError(f"{model_config.name}: the model name is too long to name a run folder")
                try:
                    (self.root / run_id).mkdir()
                    break
                except FileExistsError:  # the same id drawn by another process this second
                    continue
            else:
                raise RunError(f"could not create a run folder under {self.root}")
        run = Run(self.root / run_id)
        config = {
            "format": RUN_FORMAT,
            "version": FORMAT_VERSION,
            "run_id": run_id,
            "model_name": model_config.name,
            "model": model_config.to_dict(),
            "train": train_config.to_dict(),
            "ran": (options or RunOptions()).to_dict(),
            "data": data_info,
            "created": _now(),
            "command": _command_line(),
            **(extra or {}),
        }
        try:
            run.mark()  # first: whatever happens next, the folder proves it is a run
            atomic_write_json(config, run.config_path)
            run.checkpoint_dir.mkdir()
            run.set_status(RunState.RUNNING)
        except BaseException:  # a full disk, say: no half-made run is left behind
            shutil.rmtree(run.path, ignore_errors=True)
            raise
        faults.point("run-created")
        return run

    def _inside(self, run_id: str) -> Path:
        """The folder of this id: right inside the root, never a path that
        leads out of it ("../x")."""
        path = self.root / run_id
        if path.parent.resolve() != self.root.resolve() or run_id in ("", ".", ".."):
            raise RunError(f"{run_id!r} is not a run of {self.root}")
        return path

    def get(self, run_id: str) -> Run:
        """The run of this id, inside the root (_inside)."""
        run = Run(self._inside(run_id))
        run.config()  # raises RunError when it is not a run
        return run

    def list(self) -> list[Run]:
        """Every readable run, oldest first (scan() names the others)."""
        return self.scan().runs

    def scan(self) -> Scan:
        """The readable runs, oldest first; the damaged ones (marked runs
        whose config cannot be read); and folders with run files that do
        not prove they are runs. Other folders (hidden ones, empty ones,
        those of other tools without run files) are skipped."""
        found = Scan([], [], [])
        if not self.root.is_dir():
            return found
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not path.is_dir():
                continue
            run = Run(path)
            try:
                run.config()
                found.runs.append(run)
                continue
            except RunDamaged as err:
                problem = str(err)
            except RunError:
                what = "not a run's" if run.config_path.exists() else "missing"
                problem = f"{run.run_id} is damaged: its config.json is {what}; delete the run"
            if run.marked():
                found.damaged.append(DamagedRun(run.run_id, path, problem))
            elif any((path / name).exists() for name in RUN_FILES):
                found.not_runs.append(NotARun(run.run_id, path, _not_a_run(run.run_id)))
        return found

    def delete(self, run_id: str) -> None:
        """Delete a run folder of this store, damaged or not, once it
        proves it is a run (Run.provably_a_run: checked before anything
        goes). A link is refused, not followed: what it points at is not
        this store's to delete."""
        if (self.root / run_id).is_symlink():
            raise RunError(f"{run_id} is a link to another folder; not deleted (remove the link yourself)")
        run = Run(self._inside(run_id))
        if not run.path.is_dir():
            raise RunError(f"no run {run_id} in {self.root}")
        if not run.provably_a_run():
            raise RunError(_not_a_run(run_id))
        if run.status().get("status") == RunState.RUNNING:
            raise RunError(f"run {run_id} is still training; cancel it first")
        with folder_in_use(run.path, "the run folder", "close what holds its files, then delete it again"):
            # The marker goes last: a delete stopped half way (a file in use) leaves a
            # folder that still proves it is a run, so a second delete can finish it.
            for child in run.path.iterdir():
                if child.name != RUN_MARKER:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            run.marker_path.unlink(missing_ok=True)
            run.path.rmdir()


def _not_a_run(name: str) -> str:
    return (
        f"{name} is not a run: it has no {RUN_MARKER} marker and no config.json that reads as a run's, "
        "so it is left as it is (delete it yourself if it is one)"
    )


def open_run(path: str | Path) -> Run:
    run = Run(path)
    if not run.path.is_dir():
        raise RunError(f"no run folder at {run.path}")
    run.config()
    return run
