"""The training engine: several models race on identical batches.

It knows nothing of files or UI: it takes configs and data, and emits
events to callbacks (recording.py's RunRecorder is one; the CLI's progress bar
another). Each model has its own optimizer; every batch is drawn and
augmented once and fed to every model, so plain and residual nets see the
same images in the same order.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.sources import (
    Dataset,
    Normalizer,
    Split,
    apply_crop_flip,
    batches_per_epoch,
    crop_flip_offsets,
    epoch_generator,
    shuffled_batches,
    stratified_subset,
)
from ..errors import ConfigError
from ..nets.config import ModelConfig
from ..nets.models import build_model
from ..runs.recipe import RunOptions, TrainConfig
from ..runs.states import RunState
from ..system import on_device, uses_channels_last
from . import distributed
from .distributed import ALONE, Ranks
from .failures import failure_of

EVAL_BATCH = 1000


# --- the learning-rate schedule (pure) ---------------------------------------


def lr_at(step: int, total_steps: int, config: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate at a step: a pure function (nanoGPT's get_lr)."""
    base = config.lr
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return base * (0.1 + 0.9 * step / warmup)
    t = (step - warmup) / max(1, total_steps - warmup)  # progress after warm-up, 0..1
    if config.schedule == "paper":
        # /10 at 50% and 75%: the paper's 32k and 48k of 64k iterations
        return base * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
    if config.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t))
    if config.schedule == "onecycle":
        # up from base/25 over 30%, then cosine down towards zero
        if t < 0.3:
            return base * (0.04 + 0.96 * t / 0.3)
        return base * 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7))
    return base


# --- one step, one evaluation ------------------------------------------------


def autocast_for(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    autocast,
    weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step; returns the batch's mean loss and its number of
    mistakes as tensors on the device: reading them is left to the caller,
    once per logging window, so a GPU never waits on the host each step.
    `weight` scales the loss before backward: a rank's share of the global
    batch, so that DDP's average of the ranks' gradients is the global mean."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast:
        logits = model(images)  # [B, classes]
        loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    (loss * weight if weight != 1.0 else loss).backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) != labels).sum()


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, normalize: Normalizer, autocast=None, batch_size: int = EVAL_BATCH
) -> tuple[float, float]:
    """Mean loss and error fraction of a model on a split, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, wrong = 0.0, 0
    try:
        for start in range(0, len(split), batch_size):
            images = normalize(split.images[start : start + batch_size].to(device))
            labels = split.labels[start : start + batch_size].to(device)
            with autocast or contextlib.nullcontext():
                logits = model(images).float()
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            wrong += int((logits.argmax(1) != labels).sum())
    finally:
        model.train(was_training)
    n = max(1, len(split))
    return total_loss / n, wrong / n


# --- events and callbacks ------------------------------------------------------


@dataclass
class StepEvent:
    """Training loss and error averaged over the last logging window."""

    model: str
    step: int
    epoch: float  # fractional epochs done
    loss: float
    error: float
    lr: float


@dataclass
class EpochEvent:
    model: str
    epoch: int  # epochs completed
    step: int
    train_loss: float | None
    train_error: float | None
    test_loss: float | None  # None when this epoch was not evaluated
    test_error: float | None
    lr: float
    images_per_s: float  # training images per second of this epoch, per model
    wall_s: float  # training seconds of the race so far, resumed sessions included
    probes: dict = field(default_factory=dict)


class Callback:
    """Override what you need; every method is optional."""

    def on_race_start(self, race: Race) -> None: ...

    def on_start(self, member: Member) -> None: ...

    def on_step(self, member: Member, event: StepEvent) -> None: ...

    def on_epoch_end(self, member: Member, event: EpochEvent) -> None: ...

    def on_end(self, member: Member) -> None: ...


# A probe gets a model (in eval mode, gradients off) and the epoch, and
# returns JSON-friendly numbers for the epoch record (probes.py fills these).
Probe = Callable[[nn.Module, int], dict]


# --- members: a model with its optimiser and running sums ----------------------


@dataclass
class Sums:
    """Loss x images and mistakes summed on the device, and the images
    counted on the host: adding never waits for the device; read() does,
    once (and sums over the ranks under torchrun)."""

    def __init__(self):
        self.totals: torch.Tensor | float = 0.0  # [loss x images, mistakes]
        self.images = 0

    def add(self, loss: torch.Tensor, mistakes: torch.Tensor, images: int) -> None:
        self.totals = self.totals + torch.stack([loss.float() * images, mistakes.float()])
        self.images += images

    def read(self, ranks: Ranks, device: torch.device) -> tuple[float, float, int]:
        """(mean loss, error fraction, images) over what was added."""
        loss_sum, wrong = self.totals.tolist() if isinstance(self.totals, torch.Tensor) else (0.0, 0.0)
        images = self.images
        if ranks.distributed:  # the global batch's numbers, the same on every rank (so is a divergence)
            loss_sum, wrong, images = distributed.sums([loss_sum, wrong, images], device)
        count = max(1, round(images))
        return loss_sum / count, round(wrong) / count, round(images)


@dataclass
class Member:
    """One model in the race, with its optimizer and its own fate."""

    name: str
    config: ModelConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0  # epochs completed
    step: int = 0
    wall_s: float = 0.0
    status: str = RunState.RUNNING
    message: str = ""
    trainer: nn.Module | None = None  # what steps run through, when not the model itself (DDP, compiled)
    eager: nn.Module | None = None  # the trainer before compiling: steps go on with it if compiling fails
    # Running sums over the current logging window and epoch: loss x images
    # and mistakes, on the device (Sums), read at the window's or epoch's end.
    window: Sums = field(default_factory=lambda: Sums())
    epoch_sums: Sums = field(default_factory=lambda: Sums())

    @property
    def active(self) -> bool:
        return self.status == RunState.RUNNING

    @property
    def stepper(self) -> nn.Module:
        """What a training step runs through. (Not `trainer or model`: a
        compiled module answers truth by len(), which a net does not have.)"""
        return self.trainer if self.trainer is not None else self.model


def device_of(member: Member) -> torch.device:
    return next(member.model.parameters()).device


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def new_member(
    model_config: ModelConfig, config: TrainConfig, device: torch.device, channels_last: bool = False
) -> Member:
    """A freshly initialised model: seeded by the run seed alone, so its
    weights do not depend on which other models share the race."""
    torch.manual_seed(config.seed)
    model = on_device(build_model(model_config), device, channels_last)
    return Member(model_config.name, model_config, model, make_optimizer(model, config))


# Training images per model (epochs x images) from which "auto" compiles:
# on the CPU compiling a model's step costs half a minute to a minute
# (bench/train_throughput.py) and wins about 20%, so it pays after ~5
# minutes of eager training; a GPU trains ~30x faster, and small nets gain
# less there. MPS: not offered.
AUTO_COMPILE_IMAGES = {"cpu": 250_000, "cuda": 8_000_000}


# How each device compiles a step. A small net's step on a GPU is hundreds of
# tiny kernels whose launches cost more than their work, so CUDA records them
# once as CUDA graphs and replays them ("reduce-overhead"); the CPU has no
# graphs to replay and keeps the default.
COMPILE_MODES = {"cuda": "reduce-overhead"}


# --- compiling the step ----------------------------------------------------------


def compiled_step(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` compiled for training steps on `device`, in its mode."""
    return torch.compile(module, mode=COMPILE_MODES.get(device.type))


def replays_graphs(device: torch.device) -> bool:
    return COMPILE_MODES.get(device.type) == "reduce-overhead"


def compile_wanted(config: TrainConfig, options: RunOptions, images_per_epoch: int, device: torch.device) -> bool:
    """Whether a race compiles its models' training steps (options.compile:
    auto, on, off); images_per_epoch: what each model trains on."""
    if options.compile != "auto":
        return options.compile == "on"
    threshold = AUTO_COMPILE_IMAGES.get(device.type)
    return threshold is not None and config.epochs * images_per_epoch >= threshold


# --- the race ------------------------------------------------------------------


class Race:
    """Train members in lockstep on identical batches.

    `should_stop()` is checked before every step, so a cancel takes effect
    within one step. A member whose loss turns NaN or inf stops with status
    'diverged' and the others go on. Members resumed at different epochs (a
    race killed between two members' epoch ends) start from the earliest:
    those behind train alone until they catch up, on the batches they would
    have had, since each epoch's batches depend on the seed and epoch alone.
    """

    def __init__(
        self,
        members: Sequence[Member],
        data: Dataset,
        config: TrainConfig,
        device: torch.device,
        callbacks: Iterable[Callback] = (),
        probes: Iterable[Probe] = (),
        should_stop: Callable[[], bool] = lambda: False,
        ranks: Ranks = ALONE,
        options: RunOptions | None = None,
    ):
        if not members:
            raise ConfigError("a race needs at least one model")
        self.ranks = ranks
        self.members = list(members)
        self.config = config  # what the members learn
        self.options = options or RunOptions()  # how they run
        self.device = device
        self.callbacks = list(callbacks)
        self.probes = list(probes)
        self.should_stop = should_stop
        # Each member trains where its model is (race_devices may spread a
        # race over several GPUs); each of those devices gets the data once.
        self.devices = list(dict.fromkeys([device, *(device_of(m) for m in self.members)]))
        self.autocast = autocast_for(device, self.options.bf16)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        train = self._place_data(data)
        self._spread_over_ranks()
        self._compile_steps(len(train))
        self.steps_per_epoch = batches_per_epoch(len(train), config.batch_size, ranks.world)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.log_every = self.options.log_every or max(1, self.steps_per_epoch // 20)

    def _place_data(self, data: Dataset) -> Split:
        """The recipe's subsets of both splits, whole on every device of the
        race (each rank testing its share under torchrun), with the
        normalisers that go with them; returns the training subset."""
        config, ranks = self.config, self.ranks
        self.normalizers = {d: Normalizer(data.mean, data.std, d, uses_channels_last(d)) for d in self.devices}
        self.normalize = self.normalizers[self.device]
        train = data.train
        if config.train_subset:
            train = train.subset(stratified_subset(train.labels, config.train_subset, config.seed))
        self.trains = {d: train.to(d) for d in self.devices}  # the whole split stays on each device
        self.train = self.trains[self.device]
        test = data.test
        if config.test_subset:
            test = test.subset(stratified_subset(test.labels, config.test_subset, config.seed))
        if ranks.distributed:  # each rank tests its share; the counts are summed (test_scores)
            test = test.subset(torch.arange(ranks.rank, len(test), ranks.world))
        self.tests = {d: test.to(d) for d in self.devices}
        self.test = self.tests[self.device]
        return train

    def _spread_over_ranks(self) -> None:
        """Under torchrun each member's step averages its gradients over the ranks (DDP)."""
        if self.ranks.distributed:
            device = self.device
            for member in self.members:
                member.trainer = DistributedDataParallel(
                    member.model, device_ids=[device] if device.type == "cuda" else None
                )

    def _compile_steps(self, images_per_epoch: int) -> None:
        """torch.compile each member's step where the run is long enough to win the compile back."""
        self.compiled = compile_wanted(self.config, self.options, images_per_epoch, self.device)
        if self.compiled:
            for member in self.members:
                member.eager = member.stepper
                member.trainer = compiled_step(member.eager, device_of(member))

    def release(self) -> None:
        """Let go of what steps ran through (DDP wrappers, compiled steps)
        once the race is over. Under torchrun a DDP wrapper holds the process
        group: left alive until the interpreter exits, it was torn down after
        the group and a rank sometimes aborted there ("terminate called
        without an active exception"), failing a run that had trained."""
        for member in self.members:
            member.trainer = member.eager = None
        gc.collect()

    def _emit(self, method: str, member: Member, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, method)(member, *args)

    def _active(self) -> list[Member]:
        return [m for m in self.members if m.active]

    @property
    def start_step(self) -> int:
        """The step the race starts from: that of the member furthest behind."""
        return min(m.step for m in self.members)

    def run(self) -> dict[str, str]:
        """Train to the end, a cancel, or every member's divergence; returns statuses."""
        for callback in self.callbacks:
            callback.on_race_start(self)
        for member in self.members:
            member.model.train()
            self._emit("on_start", member)
        try:
            for epoch in range(min(m.epoch for m in self.members), self.config.epochs):
                if not self._active():
                    break
                if not self._run_epoch(epoch):
                    for member in self._active():
                        member.status, member.message = RunState.CANCELLED, f"cancelled during epoch {epoch + 1}"
                    break
            for member in self._active():
                member.status, member.message = RunState.DONE, ""
        except Exception as err:
            for member in self._active():
                member.status, member.message = RunState.FAILED, str(failure_of(err))
            raise
        finally:
            for member in self.members:
                self._emit("on_end", member)
        return {m.name: m.status for m in self.members}

    def _run_epoch(self, epoch: int) -> bool:
        """One epoch for every active member that has not done it yet; False
        if cancelled mid-way."""

        def training() -> list[Member]:
            return [m for m in self._active() if m.epoch == epoch]

        if not training():
            return True
        gen = epoch_generator(self.config.seed, epoch)
        start = time.perf_counter()
        for member in training():
            member.epoch_sums = Sums()
        for indices in shuffled_batches(len(self.train), self.config.batch_size, gen, self.ranks.world):
            if self._stopping():
                return False
            # The whole batch's crops, drawn once: every device, and every
            # rank under torchrun, crops each image as one process would.
            offsets = (
                crop_flip_offsets(len(indices), *self.train.images.shape[2:], gen) if self.config.augment else None
            )
            for device in self.devices:
                members = [m for m in training() if device_of(m) == device]
                if members:
                    images, labels, weight = self._batch(device, indices, offsets)
                    for member in members:
                        self._step(member, images, labels, epoch, weight)
            if not training():
                return True
        seconds = time.perf_counter() - start
        for member in training():
            self._end_epoch(member, epoch + 1, seconds)
        return True

    def _batch(self, device: torch.device, indices: torch.Tensor, offsets) -> tuple[torch.Tensor, torch.Tensor, float]:
        """A batch on a device, augmented and normalised: (images, labels, the
        loss weight of this rank's shard of it under torchrun)."""
        train = self.trains[device]
        if device.type == "cuda":  # copied from pinned memory without waiting: the GPU never waits on the host
            indices = indices.pin_memory()
            offsets = None if offsets is None else tuple(o.pin_memory() for o in offsets)
        on_device = indices.to(device, non_blocking=True)
        images = train.images[on_device]  # uint8 [B, 3, 32, 32]
        if offsets is not None:
            images = apply_crop_flip(images, offsets)
        images, labels = self.normalizers[device](images), train.labels[on_device]
        if not self.ranks.distributed:
            return images, labels, 1.0
        mine = slice(self.ranks.rank, None, self.ranks.world)  # this rank's shard of the global batch
        images, labels = images[mine], labels[mine]
        return images, labels, labels.shape[0] * self.ranks.world / indices.shape[0]

    def _stopping(self) -> bool:
        stop = self.should_stop()
        return distributed.anyone(stop, self.device) if self.ranks.distributed else stop

    def _step(self, member: Member, images: torch.Tensor, labels: torch.Tensor, epoch: int, weight: float) -> None:
        lr = lr_at(member.step, self.total_steps, self.config, self.steps_per_epoch)
        if member.eager is not None and replays_graphs(device_of(member)):
            # A new step: the graphs' last outputs (logits, gradients) were
            # all used, so a replay may write over them. Said each step,
            # because the race interleaves several models' graphs.
            torch.compiler.cudagraph_mark_step_begin()
        try:
            loss, mistakes = train_step(member.stepper, member.optimizer, images, labels, lr, self.autocast, weight)
        except Exception as err:
            if member.eager is None:
                raise
            # Compiling failed (no C compiler, an op it cannot take): it fails
            # before the step changes a weight, so the same step goes on eager.
            warnings.warn(f"{member.name}: torch.compile failed ({type(err).__name__}: {str(err)[:200]}); training "
                          "eager", RuntimeWarning, stacklevel=1)  # fmt: skip
            member.trainer, member.eager = member.eager, None
            loss, mistakes = train_step(member.trainer, member.optimizer, images, labels, lr, self.autocast, weight)
        n = labels.shape[0]
        member.window.add(loss, mistakes, n)
        member.epoch_sums.add(loss, mistakes, n)
        member.step += 1
        if member.step % self.log_every == 0:  # the window's end: its numbers read, once
            mean_loss, error, _ = member.window.read(self.ranks, self.device)
            member.window = Sums()
            if self._diverged(member, mean_loss, epoch):
                return
            event = StepEvent(member.name, member.step, member.step / self.steps_per_epoch, mean_loss, error, lr)
            self._emit("on_step", member, event)

    def _diverged(self, member: Member, loss: float, epoch: int) -> bool:
        """A loss that is not finite stops the member (read once per window:
        the step named is the window's last)."""
        if math.isfinite(loss):
            return False
        member.status = RunState.DIVERGED
        member.message = (
            f"the loss became {loss} by step {member.step} (epoch {epoch + 1}); lower the learning rate or add warm-up"
        )
        return True

    def _end_epoch(self, member: Member, epochs_done: int, seconds: float) -> None:
        if self.ranks.distributed:
            distributed.rank0_buffers(member.model)
        train_loss, train_error, count = member.epoch_sums.read(self.ranks, self.device)
        if self._diverged(member, train_loss, epochs_done - 1):
            return
        member.epoch = epochs_done
        member.wall_s += seconds
        test_loss = test_error = None
        if epochs_done % self.config.eval_every == 0 or epochs_done == self.config.epochs:
            test_loss, test_error = self.test_scores(member)
        event = EpochEvent(
            model=member.name,
            epoch=epochs_done,
            step=member.step,
            train_loss=train_loss,
            train_error=train_error,
            test_loss=test_loss,
            test_error=test_error,
            lr=lr_at(max(0, member.step - 1), self.total_steps, self.config, self.steps_per_epoch),
            images_per_s=count / max(seconds, 1e-9),
            wall_s=member.wall_s,
            probes=self._run_probes(member, epochs_done),
        )
        self._emit("on_epoch_end", member, event)

    def test_scores(self, member: Member) -> tuple[float, float]:
        """The member's test loss and error on the race's test split (summed over ranks under torchrun)."""
        device = device_of(member)
        loss, error = evaluate(member.model, self.tests[device], self.normalizers[device], self.autocast)
        if not self.ranks.distributed:
            return loss, error
        n = len(self.tests[device])
        loss_sum, wrong, total = distributed.sums([loss * n, error * n, n], self.device)
        return loss_sum / total, round(wrong) / total

    def _run_probes(self, member: Member, epoch: int) -> dict:
        results: dict = {}
        if not self.probes or not self.ranks.writer:  # what only the writer records
            return results
        member.model.eval()
        try:
            with torch.no_grad():
                for probe in self.probes:
                    results.update(probe(member.model, epoch))
        finally:
            member.model.train()
        return results
