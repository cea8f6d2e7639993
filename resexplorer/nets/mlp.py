"""Plain and residual MLPs for two-dimensional points (the Playground),
built as the CIFAR nets are (models.py): a stem, blocks that plain and
residual nets share, then a head.

    stem:   Linear(2, w) - BN - ReLU
    block:  Linear - BN - ReLU - Linear - BN, (+ x with the shortcut), ReLU
    head:   Linear(w, 2)

so a net of B blocks has 2B + 2 linear layers: its depth, as 6n+2 counts
the CIFAR nets' layers. Every ReLU is its own module and the residual add
is not in place, as in models.py. Read bottom-up: the block, the net.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import ConfigError

MIN_DEPTH, MAX_DEPTH = 4, 402
MIN_WIDTH, MAX_WIDTH = 2, 256
IN_FEATURES, CLASSES = 2, 2


@dataclass(frozen=True)
class MLPConfig:
    depth: int = 50  # linear layers: 2 * blocks + 2
    width: int = 16
    shortcut: bool = True
    batch_norm: bool = True
    zero_init: bool = False  # each residual branch's last BN (or, without BN, layer) starts at zero

    def __post_init__(self):
        if not (MIN_DEPTH <= self.depth <= MAX_DEPTH) or self.depth % 2:
            raise ConfigError(f"depth {self.depth} is not an even number of layers from {MIN_DEPTH} to {MAX_DEPTH}")
        if not MIN_WIDTH <= self.width <= MAX_WIDTH:
            raise ConfigError(f"width {self.width} is not from {MIN_WIDTH} to {MAX_WIDTH}")

    @property
    def blocks(self) -> int:
        return (self.depth - 2) // 2

    @property
    def name(self) -> str:
        return f"{'residual' if self.shortcut else 'plain'}-{self.depth}"

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(width: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm1d(width) if batch_norm else nn.Identity()


class MLPBlock(nn.Module):
    """Two linear layers; with the shortcut, out = relu(F(x) + x). The plain
    block has the same layers and no addition."""

    def __init__(self, width: int, shortcut: bool, batch_norm: bool):
        super().__init__()
        self.fc1 = nn.Linear(width, width, bias=not batch_norm)
        self.bn1 = _norm(width, batch_norm)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(width, width, bias=not batch_norm)
        self.bn2 = _norm(width, batch_norm)
        self.has_shortcut = shortcut
        self.relu2 = nn.ReLU()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): what the block adds to its input when it has the shortcut."""
        return self.bn2(self.fc2(self.relu1(self.bn1(self.fc1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, w] -> [B, w]
        identity = x
        out = self.branch(x)
        if self.has_shortcut:
            out = out + identity
        return self.relu2(out)


class PointNet(nn.Module):
    def __init__(self, config: MLPConfig, generator: torch.Generator | None = None):
        """generator: where the initial weights are drawn from; a seeded one
        makes them independent of the process-wide generator, which other
        threads of a server draw from at any moment."""
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(nn.Linear(IN_FEATURES, config.width, bias=not config.batch_norm))
        self.stem_bn = _norm(config.width, config.batch_norm)
        self.stem_relu = nn.ReLU()
        self.layers = nn.Sequential(
            *(MLPBlock(config.width, config.shortcut, config.batch_norm) for _ in range(config.blocks))
        )
        self.head = nn.Linear(config.width, CLASSES)
        self._initialise(generator)

    def _initialise(self, generator: torch.Generator | None) -> None:
        """He et al.'s normal initialisation (fan-in: the forward signal is
        what a plain net without BN would lose), biases at zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.config.zero_init and self.config.shortcut:
            self._zero_branches()

    def _zero_branches(self) -> None:
        """Each block starts as the identity (F(x) = 0), as resnet-56-zero does."""
        for block in self.layers:
            nn.init.zeros_(block.bn2.weight if self.config.batch_norm else block.fc2.weight)

    def blocks(self) -> list[MLPBlock]:
        return list(self.layers)

    def linear_layers(self) -> list[tuple[str, nn.Linear]]:
        """Every linear layer, input to output, named as the charts name them."""
        named = [("stem", self.stem[0])]
        for i, block in enumerate(self.layers, start=1):
            named += [(f"b{i}.fc1", block.fc1), (f"b{i}.fc2", block.fc2)]
        return [*named, ("head", self.head)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2] -> [B, w]
        return self.layers(self.stem_relu(self.stem_bn(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2] -> [B, 2] logits
        return self.head(self.forward_features(x))

    @torch.no_grad()
    def branch_ratios(self, x: torch.Tensor) -> list[float]:
        """Per block, the mean over points of ||F(x)|| / ||x||: how much each
        block changes what reaches it (near 0: close to the identity)."""
        ratios = []
        h = self.stem_relu(self.stem_bn(self.stem(x)))
        for block in self.layers:
            f = block.branch(h)
            ratios.append(float((f.norm(dim=1) / h.norm(dim=1).clamp_min(1e-12)).mean()))
            h = block(h)
        return ratios


def build_point_net(config: MLPConfig, seed: int) -> PointNet:
    """The net of this config, its initial weights drawn from this seed alone."""
    return PointNet(config, torch.Generator().manual_seed(seed))


def twin_of(net: PointNet, shortcut: bool) -> PointNet:
    """The same net with the shortcut on or off, from the same initial
    weights (zero-init applied to a residual twin alone)."""
    twin = copy.deepcopy(net)
    twin.config = MLPConfig(**{**net.config.to_dict(), "shortcut": shortcut})
    for block in twin.layers:
        block.has_shortcut = shortcut
    if twin.config.zero_init and shortcut:
        twin._zero_branches()
    return twin
