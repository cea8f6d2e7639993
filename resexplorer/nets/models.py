"""Plain and residual CIFAR nets with 6n+2 layers (paper section 4.2).

Read bottom-up, as torchvision's resnet.py: the shortcuts, one block class
shared by plain and residual nets, the net, then `build_model`.

Layer and block attribute names follow the widely used PyTorch CIFAR ResNet
reference (conv1, bn1, layer1..3, linear; blocks with conv1, bn1, conv2,
bn2, shortcut), so its public option-A weights load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

STAGE_WIDTHS = (16, 32, 64)  # filters per stage; maps 32x32, 16x16, 8x8


# --- shortcuts (options A and B: section 3.3; C: section 4.1) ----------------


class PadShortcut(nn.Module):
    """Option A where dimensions increase: parameter-free.

    Take every second pixel and zero-pad planes//4 new channels on each
    side, the convention of the public PyTorch reference.
    """

    def __init__(self, out_planes: int):
        super().__init__()
        self.pad = out_planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, H, W] -> [B, C + 2 * pad, H/2, W/2]
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


def projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Options B and C: a 1x1 convolution and BN."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


def make_shortcut(option: str, in_planes: int, out_planes: int, stride: int) -> nn.Module:
    reshapes = stride != 1 or in_planes != out_planes
    if option == "C" or (option == "B" and reshapes):
        return projection(in_planes, out_planes, stride)
    if option == "A" and reshapes:
        return PadShortcut(out_planes)
    return nn.Identity()


# --- the block --------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; with a shortcut, out = relu(F(x) + shortcut(x)).

    `shortcut=None` makes the plain block: the same layers, no addition.
    Every ReLU is its own module and nothing runs in place, so Captum's
    DeepLift and the probes' hooks see each operation separately.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut
        self.relu2 = nn.ReLU()

    @property
    def has_shortcut(self) -> bool:
        return self.shortcut is not None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the branch output after the second BN, before the addition."""
        return self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)  # [B, planes, H/stride, W/stride]
        if self.shortcut is None:
            return self.relu2(out)
        identity = self.shortcut(x)
        out = out + identity  # not in place: Captum needs both operands
        return self.relu2(out)


# --- the net ----------------------------------------------------------------


class CifarNet(nn.Module):
    """conv3x3(16)-BN-ReLU, three stages of n blocks, global pool, linear."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.relu = nn.ReLU()
        in_planes = STAGE_WIDTHS[0]
        for index, planes in enumerate(STAGE_WIDTHS, start=1):
            stride = 1 if index == 1 else 2
            setattr(self, f"layer{index}", self._stage(in_planes, planes, stride))
            in_planes = planes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(in_planes, config.num_classes)
        self._init_weights()

    def _stage(self, in_planes: int, planes: int, stride: int) -> nn.Sequential:
        blocks = []
        for i in range(self.config.blocks_per_stage):
            block_in, block_stride = (in_planes, stride) if i == 0 else (planes, 1)
            shortcut = None
            if self.config.arch == "resnet":
                shortcut = make_shortcut(self.config.shortcut, block_in, planes, block_stride)
            blocks.append(BasicBlock(block_in, planes, block_stride, shortcut))
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        """He et al.'s normal initialisation of the convolutions, in its
        fan-out form (std sqrt(2 / (k*k*out channels))), as torchvision's
        ResNets use; the widely used PyTorch CIFAR reference takes the
        fan-in form, which the paper's 'as in [13]' also allows. The linear layer keeps
        PyTorch's default (uniform, bound 1/sqrt(fan-in)). The shipped runs
        were trained from this initialisation."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.config.zero_init_residual:
            # Each block then starts as relu(0 + shortcut(x)): the identity
            # on its (non-negative) input wherever shapes match.
            for block in self.blocks():
                nn.init.zeros_(block.bn2.weight)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3]

    def blocks(self) -> list[BasicBlock]:
        """All 3n blocks in forward order."""
        return [block for stage in self.stages for block in stage]

    # The forward pass in parts, as timm splits it, for callers that run the
    # blocks themselves (science/lesion.py deletes some).
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 32, 32] normalised images -> [B, 16, 32, 32], the first block's input."""
        return self.relu(self.bn1(self.conv1(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 64, 8, 8] the last block's output -> [B, num_classes] logits."""
        return self.linear(self.flatten(self.pool(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 32, 32] normalised images -> [B, 64, 8, 8], the last block's output."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # [B, num_classes]


def build_model(config: ModelConfig | str) -> CifarNet:
    """A fresh model from a config or a name such as 'resnet-32-B'."""
    if isinstance(config, str):
        config = ModelConfig.from_name(config)
    return CifarNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
