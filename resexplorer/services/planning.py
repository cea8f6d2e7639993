"""What the Train page offers: presets, device-aware defaults, time estimates.

Pure logic, so it is tested without a UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..nets.config import DEPTHS, SHORTCUTS, ModelConfig
from ..nets.models import build_model
from ..runs.recipe import RunOptions
from ..system import on_device, uses_channels_last
from ..training.engine import autocast_for, train_step
from .reference import REFERENCE_GROUPS

NO_SHORTCUT = "off"  # a plain net, in the Train page's shortcut control (as the run picker says it)
SHORTCUT_OPTIONS = (NO_SHORTCUT, *SHORTCUTS)


@dataclass(frozen=True)
class ModelRow:
    """One model as the Train page shows it: a depth, a shortcut (none, or
    option A, B or C) and, for residual nets, zero-initialised branches.
    ModelConfig owns the name grammar; this only maps the controls to it."""

    depth: int = 20
    shortcut: str = "A"  # NO_SHORTCUT for a plain net
    zero_init: bool = False

    def config(self) -> ModelConfig:
        if self.shortcut == NO_SHORTCUT:
            return ModelConfig("plain", self.depth)
        return ModelConfig("resnet", self.depth, self.shortcut, zero_init_residual=self.zero_init)

    @property
    def name(self) -> str:
        return self.config().name

    @classmethod
    def from_name(cls, name: str) -> ModelRow:
        config = ModelConfig.from_name(name)
        shortcut = NO_SHORTCUT if config.arch == "plain" else config.shortcut
        return cls(config.depth, shortcut, config.zero_init_residual)

    def twin(self) -> ModelRow:
        """The same depth the other way: plain-56 <-> resnet-56 (option A)."""
        return ModelRow(self.depth, "A" if self.shortcut == NO_SHORTCUT else NO_SHORTCUT)


def all_model_names() -> list[str]:
    """Every model the custom picker offers: plain, and resnet with each
    shortcut option, plus the zero-init control, at every listed depth."""
    names = []
    for depth in DEPTHS:
        names.append(ModelConfig("plain", depth).name)
        names += [ModelConfig("resnet", depth, shortcut).name for shortcut in SHORTCUTS]
        names.append(ModelConfig("resnet", depth, zero_init_residual=True).name)
    return names


@dataclass(frozen=True)
class Preset:
    name: str
    models: tuple[str, ...]
    blurb: str  # what it shows, honestly
    # settings that override the device defaults (e.g. the quick demo's size)
    overrides: tuple[tuple[str, object], ...] = ()


QUICK_DEMO = Preset(
    "Quick demo",
    ("plain-20", "resnet-20"),
    "A 20-layer plain net against the residual net of the same depth, on 10,000 training images for "
    "12 epochs: 4.5 to 8 minutes on the 2-core CPUs we measured (the expected duration below is measured "
    "on yours). It shows the first half of the paper's point: with "
    "shortcuts the same depth trains faster, and its training error stays lower (on the CIFAR-10 JPEG "
    "copy, by 4 to 7 points from the third epoch on; 34% against 40% at the end). It is too short to show "
    "that deeper ResNets beat shallower ones (short runs favour shallow nets of both kinds): for that, "
    "see the reference runs faded underneath and the Home page.",
    (
        ("epochs", 12),
        ("train_subset", 10000),
        ("test_subset", 1000),
        ("batch_size", 128),
        ("lr", 0.1),
        ("schedule", "cosine"),
    ),
)

# The quick demo, one preset per reference group (its finding shown by its
# shipped runs underneath), a depth sweep, and a free choice.
PRESETS = {
    p.name: p
    for p in (
        QUICK_DEMO,
        *(Preset(g.title, g.models, g.shows) for g in REFERENCE_GROUPS.values() if g.preset),
        Preset(
            "Depth sweep",
            ("resnet-20", "resnet-32", "resnet-44", "resnet-56"),
            "Table 6: with shortcuts, every step in depth lowers the error.",
        ),
        Preset("Custom", (), "Any mix of plain and residual nets, depths and shortcut options."),
    )
}


def default_settings(device_type: str) -> dict:
    """Small on a CPU; within reach of the paper's recipe on a GPU."""
    if device_type == "cuda":
        return {
            "epochs": 60,
            "batch_size": 128,
            "lr": 0.1,
            "schedule": "paper",
            "train_subset": None,
            "test_subset": None,
            "seed": 0,
        }
    return {
        "epochs": 5,
        "batch_size": 128,
        "lr": 0.1,
        "schedule": "cosine",
        "train_subset": 10000,
        "test_subset": 2000,
        "seed": 0,
    }


# --- how long will it take -----------------------------------------------------

EVAL_COST = 1 / 3  # a forward pass is about a third of a training step
STARTUP_S = 8.0  # starting the worker process and loading the cached data set


def measure_layer_rate(device: torch.device, batch: int = 64, steps: int = 3, bf16: bool | None = None) -> float:
    """Image-layers per second of a training step on this device: time a
    few steps of resnet-14 (cost grows with depth, so rate / depth estimates
    any of our nets). The step is the engine's own (engine.train_step, with
    the recipe's bf16 autocast on CUDA and its memory layout), so the estimate
    times what will run; only torch.compile is left out, which would take
    longer than the estimate is worth. bench/duration_estimate.py checks the
    estimate against real jobs."""
    torch.manual_seed(0)
    model = on_device(build_model("resnet-14"), device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    memory_format = torch.channels_last if uses_channels_last(device) else torch.contiguous_format
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = autocast_for(device, RunOptions().bf16 if bf16 is None else bf16)

    def step():
        train_step(model, opt, x, y, 0.01, autocast)

    step()  # warm-up: kernels, allocations
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    # The fastest step: the page measures while the browser and the server
    # start too, and a slow step then made the estimate twice too long.
    return batch * 14 / min(times)


def estimate_seconds(
    models: list[str], epochs: int, n_train: int, n_test: int, layer_rate: float, eval_every: int = 1
) -> float:
    """Expected training time of a race: every model sees every image."""
    depth_sum = sum(ModelConfig.from_name(name).depth for name in models)
    evaluations = epochs // eval_every + (epochs % eval_every != 0)
    image_layers = depth_sum * (epochs * n_train + evaluations * n_test * EVAL_COST)
    return STARTUP_S + image_layers / layer_rate
