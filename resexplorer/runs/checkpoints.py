"""Checkpoints: a run's model, optimizer and RNG state at an epoch.

Each carries its model and training configs, so a model is rebuilt from a
checkpoint alone (nanoGPT's model_args habit). Read with weights_only, so
a file from elsewhere cannot run code; written atomically.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import pickle
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..nets.config import ModelConfig
from ..nets.models import build_model
from ..storage import atomic_write_bytes
from .store import FORMAT_VERSION, Run

CHECKPOINT_FORMAT = "resexplorer-checkpoint"
XZ_MAGIC = b"\xfd7zXZ\x00"
# A .pt checkpoint ends with the SHA-256 of what precedes it and this marker,
# in the one file, so a kill can never leave the file and its checksum
# apart; a file that rotted on disk is refused instead of loaded. (The .xz
# copies carry xz's own check.) Files from before the trailer load as they are.
CHECKSUM_MARKER = b"RXSHA256"
TRAILER = 32 + len(CHECKSUM_MARKER)
REQUIRED = ("model_config", "train_config", "data", "model", "epoch")
# torch.load warns of any pickle protocol but its own before refusing what
# it cannot read: load_checkpoint says what is wrong in one line instead.
warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)


def load_checkpoint(path: str | Path) -> dict:
    """Read one of our checkpoints safely (weights_only), xz-compressed or
    not; floats come back as float32 even when stored in half precision."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        raw = _verified(path, path.read_bytes())
        if raw.startswith(XZ_MAGIC):
            raw = lzma.decompress(raw)
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as err:  # torch's text would advise turning weights_only off: not quoted
        raise CheckpointError(
            f"{path} is not a readable ResNet Explorer checkpoint: it holds objects other than tensors and "
            "plain data, which are never loaded"
        ) from err
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable ResNet Explorer checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a ResNet Explorer checkpoint (no '{CHECKPOINT_FORMAT}' marker)"
        )
    version = ckpt.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:  # its fields may differ: said before checking them
        raise CheckpointError(f"{path} was written by a newer ResNet Explorer (format {version}); update to read it")
    problem = _structure_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path} is damaged: {problem}")
    ckpt["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    return ckpt


def _structure_problem(ckpt: dict) -> str | None:
    """What is wrong with a checkpoint's structure, or None: every field a
    reader uses is there and of its type, so no reader meets a KeyError."""
    missing = [k for k in ("version", *REQUIRED) if k not in ckpt]
    if missing:
        return f"it lacks {', '.join(missing)}"
    for key in ("version", "epoch"):
        if not isinstance(ckpt[key], int) or isinstance(ckpt[key], bool):
            return f"its {key} is not a number"
    for key in ("model_config", "train_config", "data"):
        if not isinstance(ckpt[key], dict):
            return f"its {key} is not a dict"
    model = ckpt["model"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        return "its model is not a dict of tensors"
    lacking = [k for k in ("mean", "std", "classes") if k not in ckpt["data"]]
    if lacking:
        return f"its data lacks {', '.join(lacking)}"
    return None


def load_run_checkpoint(run: Run, which: str | int = "last") -> dict:
    """A run's checkpoint: 'last' or a kept epoch."""
    return load_checkpoint(run.checkpoint_path(which))


def save_run_checkpoint(run: Run, ckpt: dict) -> None:
    """An epoch's checkpoint under its own name, epoch-NNNN.pt; it counts
    once the epoch's record follows it (store.py: how an epoch is committed)."""
    save_checkpoint(ckpt, run.checkpoint_dir / f"epoch-{ckpt['epoch']:04d}.pt", kill_point="checkpoint-unrenamed")


def save_checkpoint(ckpt: dict, path: Path, kill_point: str | None = None) -> None:
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(payload + hashlib.sha256(payload).digest() + CHECKSUM_MARKER, path, kill_point)


def _verified(path: Path, raw: bytes) -> bytes:
    """The checkpoint's bytes without their checksum trailer, once they
    match it; a file without a trailer (written before it) as it is."""
    if not raw.endswith(CHECKSUM_MARKER):
        return raw
    payload, digest = raw[:-TRAILER], raw[-TRAILER : -len(CHECKSUM_MARKER)]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            f"{path} is damaged: its contents no longer match the checksum written with it; "
            "resume from or evaluate another kept epoch"
        )
    return payload


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
