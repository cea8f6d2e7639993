"""ModelConfig: everything needed to rebuild a model, and the model-name
grammar (`plain-56`, `resnet-32-B`, `resnet-56-zero`). Plain data, no torch,
so the charts and the pages can read model names without loading the nets."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..errors import ConfigError

ARCHS = ("plain", "resnet")
SHORTCUTS = ("A", "B", "C")
ZERO_INIT_SUFFIX = "zero"
# The depths the app offers and orders its colours by: the paper's CIFAR nets
# (6n+2 for n = 3, 5, 7, 9, 18) and two small ones for quick runs.
DEPTHS = (8, 14, 20, 32, 44, 56, 110)
# ARCH-DEPTH[-SHORTCUT][-zero], from the tuples above
_NAME = re.compile(rf"({'|'.join(ARCHS)})-(\d+)(?:-([{''.join(SHORTCUTS)}]))?(?:-({ZERO_INIT_SUFFIX}))?")
_NAME_HELP = (
    "valid names are ARCH-DEPTH[-SHORTCUT][-zero]: ARCH is plain or resnet, "
    "DEPTH is 6n+2 (8, 14, 20, 32, 44, 56, 110, ...), SHORTCUT is A (the "
    "default, left out of the name), B or C for resnets only, and '-zero' "
    "starts every residual branch at zero; e.g. resnet-20, plain-56, "
    "resnet-32-B, resnet-56-zero"
)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    arch: str = "resnet"
    depth: int = 20
    shortcut: str = "A"
    num_classes: int = 10
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown arch {self.arch!r}: {_NAME_HELP}")
        if not isinstance(self.depth, int) or self.depth < 8 or (self.depth - 2) % 6:
            raise ConfigError(f"depth {self.depth!r} is not 6n+2 with n >= 1: {_NAME_HELP}")
        if self.shortcut not in SHORTCUTS:
            raise ConfigError(f"unknown shortcut option {self.shortcut!r}: {_NAME_HELP}")
        if self.arch == "plain" and (self.shortcut != "A" or self.zero_init_residual):
            raise ConfigError(
                "plain nets have no shortcuts and no residual branch: leave shortcut at 'A' and zero_init_residual off"
            )
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ConfigError(f"num_classes must be an integer >= 2, not {self.num_classes!r}")

    @property
    def blocks_per_stage(self) -> int:
        """n in 6n+2."""
        return (self.depth - 2) // 6

    @property
    def name(self) -> str:
        parts = [self.arch, str(self.depth)]
        if self.shortcut != "A":
            parts.append(self.shortcut)
        if self.zero_init_residual:
            parts.append(ZERO_INIT_SUFFIX)
        return "-".join(parts)

    @classmethod
    def from_name(cls, name: str, num_classes: int = 10) -> ModelConfig:
        """Parse 'resnet-32-B', 'plain-56', 'resnet-56-zero' and the like."""
        match = _NAME.fullmatch(name.strip())
        if not match:
            raise ConfigError(f"unknown model name {name!r}: {_NAME_HELP}")
        arch, depth, shortcut, zero = match.groups()
        if arch == "plain" and (shortcut or zero):
            raise ConfigError(f"{name!r}: plain nets take no shortcut or '-zero' suffix; {_NAME_HELP}")
        return cls(
            arch=arch,
            depth=int(depth),
            shortcut=shortcut or "A",
            num_classes=num_classes,
            zero_init_residual=bool(zero),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})
