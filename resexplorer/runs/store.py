"""The run store: one folder per trained model, readable while it grows.

    runs/<run_id>/
      config.json        model, training and data settings, library versions
      metrics.jsonl      one JSON record per event, appended and flushed
      status.json        running | done | cancelled | diverged | failed
      checkpoints/
        last.pt          the newest completed epoch, for resume
        epoch-NNNN.pt    kept moments: initialisation, epoch 1, middle, end

Every write that replaces a file is atomic (storage.py); metrics only grow.
A run whose status says running but whose process is gone reads as
'interrupted' and resumes from last.pt. Plain files only: reading a run
needs no torch (the checkpoints are read by checkpoints.py).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..errors import RunError
from ..nets.config import ModelConfig
from ..processes import process_of, this_process
from ..storage import HeldLock, atomic_write_bytes, atomic_write_json, remove_leftovers
from .recipe import TrainConfig

RUN_FORMAT = "resexplorer-run"
FORMAT_VERSION = 1  # of run folders and of checkpoints
CHECKPOINT_SUFFIXES = (".pt", ".pt.xz")  # .pt.xz: compact shipped checkpoints
WRITER_LOCK = "writer.lock"  # held by the one process writing a run (Run.writer)


def _command_line() -> str:
    """How this process was started, without this machine's paths."""
    program = "python -m resexplorer" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    return " ".join([program, *sys.argv[1:]])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def middle_epoch(epochs: int) -> int:
    """The kept "middle" of a run of this many epochs."""
    return max(1, round(epochs / 2))


def epochs_to_keep(epochs: int) -> set[int]:
    """The moments a run of this many epochs keeps a checkpoint of:
    initialisation, first epoch, middle, end (Run.kept_epochs: those on disk)."""
    return {0, 1, middle_epoch(epochs), epochs}


# --- one run --------------------------------------------------------------------


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
        try:
            config = json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run folder (no config.json)") from None
        except (OSError, json.JSONDecodeError) as err:
            raise RunError(f"{self.config_path} is unreadable: {err}") from err
        if config.get("format") != RUN_FORMAT:
            raise RunError(f"{self.path} is not a ResNet Explorer run folder")
        return config

    def update_config(self, changes: dict) -> None:
        atomic_write_json({**self.config(), **changes}, self.config_path)

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.config()["model"])

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config()["train"])

    # metrics
    def append_metric(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()

    def metrics(self, kind: str | None = None) -> list[dict]:
        """All records, or those of one kind ('train', 'epoch'). A line torn by
        a killed writer is skipped."""
        records = []
        try:
            with open(self.metrics_path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if kind is None or record.get("kind") == kind:
                        records.append(record)
        except FileNotFoundError:
            pass
        return records

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past a checkpoint's step, before resuming from it."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= after_step]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
        atomic_write_bytes(text.encode("utf-8"), self.metrics_path)

    def remove_leftovers(self) -> int:
        """The half-written files a killed writer left (hold the writer claim)."""
        return remove_leftovers(self.path) + remove_leftovers(self.checkpoint_dir)

    # status
    def set_status(self, status: str, message: str = "") -> None:
        atomic_write_json(
            {"status": status, "message": message, **this_process(), "host": socket.gethostname(), "updated": _now()},
            self.status_path,
        )

    def status(self) -> dict:
        """The status record; 'running' whose process is gone reads 'interrupted'."""
        try:
            record = json.loads(self.status_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {"status": "interrupted", "message": "no readable status: the run was stopped while starting"}
        if record.get("status") == "running" and record.get("host") == socket.gethostname():
            if process_of(record.get("pid"), record.get("started")) is None:
                record = {
                    **record,
                    "status": "interrupted",
                    "message": "the training process ended without finishing; "
                    "resume continues from the last completed epoch",
                }
        return record

    # checkpoints
    def checkpoint_path(self, which: str | int = "last") -> Path:
        """The file of a kept epoch or of 'last'; a packed run (no last.pt)
        answers 'last' with its newest kept epoch."""
        if isinstance(which, int) or str(which).isdigit():
            stem = f"epoch-{int(which):04d}"
        elif which == "last" and not (self.checkpoint_dir / "last.pt").exists() and self.kept_epochs():
            stem = f"epoch-{self.kept_epochs()[-1]:04d}"
        else:
            stem = str(which)
        for suffix in CHECKPOINT_SUFFIXES:
            if (self.checkpoint_dir / f"{stem}{suffix}").exists():
                return self.checkpoint_dir / f"{stem}{suffix}"
        return self.checkpoint_dir / f"{stem}.pt"

    def kept_epochs(self) -> list[int]:
        names = {p.name.split(".")[0] for p in self.checkpoint_dir.glob("epoch-*.pt*")}
        return sorted(int(name.split("-")[1]) for name in names)

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
        }


# --- the store ---------------------------------------------------------------------


class RunStore:
    """A folder of runs. Two processes creating runs never collide: each run
    folder is made with an exclusive mkdir under a random id."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Path(root).expanduser()  # "~/runs", as the data path takes it

    def create(
        self, model_config: ModelConfig, train_config: TrainConfig, data_info: dict, extra: dict | None = None
    ) -> Run:
        """A new run folder; `extra` adds to its config (versions, group...)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(20):
            run_id = f"{stamp}-{model_config.name}-{secrets.token_hex(3)}"
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
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
            "data": data_info,
            "created": _now(),
            "command": _command_line(),
            **(extra or {}),
        }
        atomic_write_json(config, run.config_path)
        run.checkpoint_dir.mkdir()
        run.set_status("running")
        return run

    def get(self, run_id: str) -> Run:
        """The run of this id: a folder right inside the root, never a path
        that leads out of it ("../x")."""
        path = self.root / run_id
        if path.parent.resolve() != self.root.resolve() or run_id in ("", ".", ".."):
            raise RunError(f"{run_id!r} is not a run of {self.root}")
        run = Run(path)
        run.config()  # raises RunError when it is not a run
        return run

    def list(self) -> list[Run]:
        """Every readable run, oldest first; folders that are not runs are skipped."""
        if not self.root.is_dir():
            return []
        runs = []
        for path in sorted(self.root.iterdir()):
            if (path / "config.json").is_file():
                try:
                    Run(path).config()
                except RunError:
                    continue
                runs.append(Run(path))
        return runs

    def delete(self, run_id: str) -> None:
        """Delete a run folder of this store. A link is refused, not
        followed: what it points at is not this store's to delete."""
        if (self.root / run_id).is_symlink():
            raise RunError(f"{run_id} is a link to another folder; not deleted (remove the link yourself)")
        run = self.get(run_id)
        if run.status().get("status") == "running":
            raise RunError(f"run {run_id} is still training; cancel it first")
        shutil.rmtree(run.path)


def open_run(path: str | Path) -> Run:
    run = Run(path)
    if not run.path.is_dir():
        raise RunError(f"no run folder at {run.path}")
    run.config()
    return run
