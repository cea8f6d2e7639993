"""Training events into the run store, and back: the recorder writes each
member's steps, epochs and checkpoints into its run folder; resume_member
restores a member from its run's last checkpoint."""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from .. import faults
from ..errors import CheckpointError
from ..nets.config import ModelConfig
from ..runs.checkpoints import (
    CHECKPOINT_FORMAT,
    load_run_checkpoint,
    model_from_checkpoint,
    save_run_checkpoint,
)
from ..runs.recipe import TrainConfig
from ..runs.states import RunState
from ..runs.store import FORMAT_VERSION, Run
from ..storage import HeldLock
from ..system import on_device
from .engine import Callback, EpochEvent, Member, StepEvent, make_optimizer, new_member


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


class RunRecorder(Callback):
    """Writes each member's events into its run folder."""

    def __init__(self, runs: dict[str, Run], train_config: TrainConfig, data_info: dict, claims: dict[str, HeldLock]):
        """claims: each run's writer claim, held until its member ends."""
        self.runs = runs
        self.train_config = train_config
        self.data_info = data_info
        self.claims = claims

    def _save(self, member: Member) -> None:
        checkpoint = checkpoint_dict(member, self.train_config, self.data_info)
        save_run_checkpoint(self.runs[member.name], checkpoint)

    def on_start(self, member: Member) -> None:
        run = self.runs[member.name]
        run.set_status(RunState.RUNNING)
        if member.epoch == 0 and not run.checkpoint_path(0).exists():
            self._save(member)

    def on_step(self, member: Member, event: StepEvent) -> None:
        record = {"kind": "train", **asdict(event), "time": time.time()}
        self.runs[member.name].append_metric(record)
        faults.point("step-logged")

    def on_epoch_end(self, member: Member, event: EpochEvent) -> None:
        # One commit (store.py): the epoch's checkpoint, then the record that
        # makes it count, then the previous epoch's checkpoint may go.
        run = self.runs[member.name]
        self._save(member)
        faults.point("epoch-saved")
        run.append_metric({"kind": "epoch", **asdict(event), "time": time.time()}, torn_point="epoch-line-torn")
        faults.point("epoch-committed")
        run.retire_checkpoint(event.epoch - 1)
        faults.point("epoch-tidied")

    def on_end(self, member: Member) -> None:
        self.runs[member.name].set_status(member.status, member.message)
        claim = self.claims.pop(member.name, None)
        if claim is not None:
            claim.release()


def resume_member(run: Run, device: torch.device, channels_last: bool = False, tidy: bool = True) -> Member:
    """A member restored from a run's newest committed checkpoint: weights,
    momentum, step and RNG, so training continues exactly where it stopped.
    A run killed before its first checkpoint starts again from its seed.
    tidy: drop the metrics past that checkpoint (the run's writer does; the
    other ranks under torchrun only read)."""
    if not run.checkpoint_path("last").exists() and run.committed_epoch() == 0:
        if tidy:
            run.truncate_metrics(after_step=0)
        return new_member(run.model_config(), run.train_config(), device, channels_last)
    ckpt = load_run_checkpoint(run, "last")
    if not isinstance(ckpt.get("optimizer"), dict) or not isinstance(ckpt.get("rng"), dict):
        raise CheckpointError(
            f"{run.run_id}'s last checkpoint has no optimizer state (a shipped compact copy keeps only the "
            "weights), so it cannot resume; train a new run instead"
        )
    model = on_device(model_from_checkpoint(ckpt), device, channels_last)
    model.train()
    train_config = TrainConfig.from_dict(ckpt["train_config"])
    optimizer = make_optimizer(model, train_config)
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if tidy:
        run.truncate_metrics(after_step=ckpt["step"])
    config = ModelConfig.from_dict(ckpt["model_config"])
    return Member(
        config.name, config, model, optimizer, epoch=ckpt["epoch"], step=ckpt["step"], wall_s=ckpt.get("wall_s", 0.0)
    )
