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
'interrupted' and resumes from last.pt. Checkpoints carry their configs, so
a model is rebuilt from a checkpoint alone (nanoGPT's model_args habit).
"""

from __future__ import annotations

import io
import json
import lzma
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..errors import CheckpointError, RunError
from ..nets.config import ModelConfig
from ..nets.models import build_model
from ..storage import atomic_torch_save, atomic_write_bytes, atomic_write_json
from ..system import library_versions
from .engine import (
    Callback,
    EpochEvent,
    Member,
    StepEvent,
    TrainConfig,
    make_optimizer,
    on_device,
)

RUN_FORMAT = "resexplorer-run"
CHECKPOINT_FORMAT = "resexplorer-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_SUFFIXES = (".pt", ".pt.xz")  # .pt.xz: compact shipped checkpoints
XZ_MAGIC = b"\xfd7zXZ\x00"


def _command_line() -> str:
    """How this process was started, without this machine's paths."""
    program = "python -m resexplorer" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    return " ".join([program, *sys.argv[1:]])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def middle_epoch(epochs: int) -> int:
    """The kept "middle" of a run of this many epochs."""
    return max(1, round(epochs / 2))


def keep_epochs(epochs: int) -> set[int]:
    """The moments a run keeps: initialisation, first epoch, middle, end."""
    return {0, 1, middle_epoch(epochs), epochs}


# --- checkpoints --------------------------------------------------------------


def checkpoint_dict(member: Member, train_config: TrainConfig, data_info: dict) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "model_config": member.config.to_dict(),
        "train_config": train_config.to_dict(),
        "data": data_info,
        "epoch": member.epoch,
        "step": member.step,
        "wall_s": member.wall_s,
        "model": {k: v.detach().cpu() for k, v in member.model.state_dict().items()},
        "optimizer": member.optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
    }


def load_checkpoint(path: str | Path) -> dict:
    """Read one of our checkpoints safely (weights_only), xz-compressed or
    not; floats come back as float32 even when stored in half precision."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        raw = path.read_bytes()
        if raw.startswith(XZ_MAGIC):
            raw = lzma.decompress(raw)
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable ResNet Explorer checkpoint ({first[:200]})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a ResNet Explorer checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if ckpt.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer ResNet Explorer (format {ckpt['version']}); update to read it")
    missing = [k for k in ("model_config", "train_config", "data", "model", "epoch") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing)}")
    ckpt["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    return ckpt


def save_compact_checkpoint(ckpt: dict, path: Path, half: bool = True) -> None:
    """A shipped checkpoint: no optimizer or RNG state (nothing to resume),
    weights in half precision unless told otherwise, xz-compressed."""
    compact = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")}
    if half:
        compact["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    buffer = io.BytesIO()
    torch.save(compact, buffer)
    data = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    atomic_write_bytes(data, path)


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    """Rebuild the model a checkpoint describes and load its weights."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        model = build_model(config)
        model.load_state_dict(ckpt["model"])
    except (ValueError, RuntimeError, TypeError, KeyError) as err:
        raise CheckpointError(f"the checkpoint's weights do not fit its model config: {str(err)[:300]}") from err
    return model.eval()


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
        tmp = self.metrics_path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.metrics_path)

    # status
    def set_status(self, status: str, message: str = "") -> None:
        atomic_write_json(
            {"status": status, "message": message, "pid": os.getpid(), "host": socket.gethostname(), "updated": _now()},
            self.status_path,
        )

    def status(self) -> dict:
        """The status record; 'running' whose process is gone reads 'interrupted'."""
        try:
            record = json.loads(self.status_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {"status": "interrupted", "message": "no readable status: the run was stopped while starting"}
        if record.get("status") == "running" and record.get("host") == socket.gethostname():
            if not pid_alive(int(record.get("pid", -1))):
                record = {**record, "status": "interrupted", "message": "the training process ended without finishing; resume continues from the last completed epoch"}
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

    def save_checkpoint(self, ckpt: dict, keep: bool) -> None:
        atomic_torch_save(ckpt, self.checkpoint_dir / "last.pt")
        if keep:
            atomic_torch_save(ckpt, self.checkpoint_dir / f"epoch-{ckpt['epoch']:04d}.pt")

    def load_checkpoint(self, which: str | int = "last") -> dict:
        return load_checkpoint(self.checkpoint_path(which))

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
        self.root = Path(root)

    def create(self, model_config: ModelConfig, train_config: TrainConfig, data_info: dict, extra: dict | None = None) -> Run:
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
            "versions": library_versions(),
            "created": _now(),
            "command": _command_line(),
            **(extra or {}),
        }
        atomic_write_json(config, run.config_path)
        run.checkpoint_dir.mkdir()
        run.set_status("running")
        return run

    def get(self, run_id: str) -> Run:
        run = Run(self.root / run_id)
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


# --- the recorder: training events -> the run store ----------------------------------


class RunRecorder(Callback):
    """Writes each member's events into its run folder."""

    def __init__(self, runs: dict[str, Run], train_config: TrainConfig, data_info: dict):
        self.runs = runs
        self.train_config = train_config
        self.data_info = data_info
        self.keep = keep_epochs(train_config.epochs)

    def on_start(self, member: Member) -> None:
        run = self.runs[member.name]
        run.set_status("running")
        if member.epoch == 0 and not run.checkpoint_path(0).exists():
            run.save_checkpoint(checkpoint_dict(member, self.train_config, self.data_info), keep=True)

    def on_step(self, member: Member, event: StepEvent) -> None:
        record = {"kind": "train", **asdict(event), "time": time.time()}
        self.runs[member.name].append_metric(record)

    def on_epoch_end(self, member: Member, event: EpochEvent) -> None:
        run = self.runs[member.name]
        # checkpoint first: every epoch the metrics list then has its checkpoint
        run.save_checkpoint(checkpoint_dict(member, self.train_config, self.data_info), keep=event.epoch in self.keep)
        run.append_metric({"kind": "epoch", **asdict(event), "time": time.time()})

    def on_end(self, member: Member) -> None:
        self.runs[member.name].set_status(member.status, member.message)


def resume_member(run: Run, device: torch.device, channels_last: bool = False) -> Member:
    """A member restored from a run's last checkpoint: weights, momentum,
    step and RNG, so training continues exactly where it stopped."""
    ckpt = run.load_checkpoint("last")
    model = on_device(model_from_checkpoint(ckpt), device, channels_last)
    model.train()
    train_config = TrainConfig.from_dict(ckpt["train_config"])
    optimizer = make_optimizer(model, train_config)
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    run.truncate_metrics(after_step=ckpt["step"])
    config = ModelConfig.from_dict(ckpt["model_config"])
    return Member(config.name, config, model, optimizer, epoch=ckpt["epoch"], step=ckpt["step"], wall_s=ckpt.get("wall_s", 0.0))
