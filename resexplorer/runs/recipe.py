"""TrainConfig: one training recipe, stored in every run and checkpoint;
RunOptions: how a run is run, which changes nothing it learns.

Plain data, no torch. Each field carries what a user needs to set it (its
help, and for the fields the Train page offers, a label and bounds), so the
command line's flags and the page's widgets are derived from the fields
here rather than restated.

The two are kept apart because runs that differ only in how they ran (on
which device, in which precision on a GPU, compiled or not, how often a
training point was logged) learned the same recipe: they resume together,
and a resume may run them differently (on the device chosen anew).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field

from ..errors import ConfigError

SCHEDULES = ("paper", "cosine", "onecycle", "constant")
COMPILE_CHOICES = ("auto", "on", "off")
# Seeds up to 2**32 - 1: each epoch's generator is seeded with a multiple of
# the seed, which must stay within torch's 64-bit seed range.
MAX_SEED = 2**32 - 1


def _setting(default, help: str, label: str | None = None, bounds: tuple | None = None, choices=None):
    """A field with its help; `label` and `bounds` put it on the Train page."""
    return field(default=default, metadata={"help": help, "label": label, "bounds": bounds, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Defaults: the paper's optimiser (SGD, momentum 0.9, weight decay
    1e-4, batch 128, lr 0.1)."""

    epochs: int = _setting(10, "passes over the training images", "Epochs", (1, 500))
    batch_size: int = _setting(128, "images per SGD step", "Batch size", (2, 4096))
    lr: float = _setting(0.1, "the peak learning rate", "Learning rate", (1e-5, 10.0))
    momentum: float = _setting(0.9, "SGD momentum")
    weight_decay: float = _setting(1e-4, "L2 weight decay")
    schedule: str = _setting("cosine", "paper: lr / 10 at 50% and 75% of the run", "Schedule", choices=SCHEDULES)
    # the paper warms ResNet-110 up at lr / 10
    warmup_epochs: float = _setting(0.0, "epochs of linear warm-up from lr / 10")
    seed: int = _setting(0, "seeds the weights, the batches and the subsets", "Seed", (0, MAX_SEED))
    train_subset: int | None = _setting(
        None, "a stratified subset of N training images (default: all)", "Train images (0 = all)", (0, 10_000_000)
    )
    test_subset: int | None = _setting(
        None, "test on a stratified subset of N images: faster curves", "Test images (0 = all)", (0, 10_000_000)
    )
    eval_every: int = _setting(1, "test every K epochs, and at the last")
    augment: bool = _setting(True, "pad-4 random crop and horizontal flip")

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, not {self.epochs}"),
            (self.batch_size >= 2, f"batch size must be >= 2 (BatchNorm), not {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, not {self.lr}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}"),
            (
                math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0,
                f"warm-up epochs must be >= 0, not {self.warmup_epochs}",
            ),
            (self.warmup_epochs < self.epochs, f"warm-up ({self.warmup_epochs} epochs) must be shorter than the run"),
            (self.train_subset is None or self.train_subset >= 2, "train subset must be >= 2 images"),
            (self.test_subset is None or self.test_subset >= 1, "test subset must be >= 1 image"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (0 <= self.seed <= MAX_SEED, f"seed must be between 0 and {MAX_SEED}, not {self.seed}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1) (SGD diverges from 1 on), not {self.momentum}"),
            (
                math.isfinite(self.weight_decay) and self.weight_decay >= 0,
                f"weight decay must be >= 0, not {self.weight_decay}",
            ),
        ]
        _check(checks)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """From a stored dict; keys of other fields are left out (runs made
        before RunOptions held its fields in the recipe)."""
        return cls(**_own_fields(cls, data))


@dataclass(frozen=True)
class RunOptions:
    """How a run is run: none of it changes what the nets learn."""

    device: str = _setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    bf16: bool = _setting(True, "autocast to bfloat16 on CUDA (ignored elsewhere)")
    log_every: int = _setting(0, "steps per logged training point (0: about 20 per epoch)")
    compile: str = _setting(
        "auto",
        "torch.compile the training step: auto (on when the run is long enough to win back the minute "
        "compiling takes), on or off; training goes on eager if compiling fails",
        "Compile",
        choices=COMPILE_CHOICES,
    )

    def __post_init__(self) -> None:
        _check(
            [
                (self.compile in COMPILE_CHOICES, f"compile must be one of {', '.join(COMPILE_CHOICES)}"),
                (self.log_every >= 0, f"log_every must be >= 0 (0: about 20 points per epoch), not {self.log_every}"),
                (
                    self.device in ("auto", "cpu", "mps") or self.device.startswith("cuda"),
                    f"unknown device {self.device!r}",
                ),
            ]
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunOptions:
        return cls(**_own_fields(cls, data))


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _own_fields(cls, data: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Setting:
    """One field of TrainConfig or RunOptions (`of`) as a user sets it:
    name, value type (int, float, str or bool), whether None ("all") is
    allowed, and its texts."""

    of: type
    name: str
    kind: type
    optional: bool
    default: object
    help: str
    label: str | None
    bounds: tuple | None
    choices: tuple | None


def settings() -> list[Setting]:
    """The fields of TrainConfig, then RunOptions, in order, described for
    flags and widgets."""
    described = []
    for of in (TrainConfig, RunOptions):
        described += _described(of)
    return described


def split_settings(values: dict) -> tuple[TrainConfig, RunOptions]:
    """The recipe and the run options of one set of setting values (a
    command line's, a page's), each taking its own; the rest keep their
    defaults."""
    return TrainConfig.from_dict(values), RunOptions.from_dict(values)


def _described(of: type) -> list[Setting]:
    hints = typing.get_type_hints(of)
    described = []
    for f in dataclasses.fields(of):
        kinds = [t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)]
        described.append(
            Setting(
                of,
                f.name,
                kinds[0],
                type(None) in typing.get_args(hints[f.name]),
                f.default,
                f.metadata["help"],
                f.metadata["label"],
                f.metadata["bounds"],
                f.metadata["choices"],
            )
        )
    return described
