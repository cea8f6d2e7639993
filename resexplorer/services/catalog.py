"""Every run a page can offer: the shipped reference runs and the user's,
with labels and sensible defaults (the pages that look inside trained nets
share this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ResExplorerError
from ..nets.config import ModelConfig
from ..runs.store import DamagedRun, Run, RunStore
from . import reference

# The shortcut toggle of the run pickers and Home: plain nets only, residual
# nets only (option A, the paper's CIFAR choice), or both side by side.
SHORTCUT_ARCHS = {"off": ("plain",), "on": ("resnet",), "both": ("plain", "resnet")}
SHORTCUT_CHOICES = tuple(SHORTCUT_ARCHS)
SHORTCUT_LABELS = {"off": "off (plain)", "on": "on (residual)", "both": "both"}  # the toggle reads the same everywhere


def pair_models(depth: int, shortcuts: str) -> list[str]:
    """The model names a depth and a shortcut choice stand for, plain first:
    (56, "both") -> ["plain-56", "resnet-56"]."""
    if shortcuts not in SHORTCUT_CHOICES:
        raise ValueError(f"shortcuts must be one of {SHORTCUT_CHOICES}, not {shortcuts!r}")
    return [ModelConfig(arch, depth).name for arch in SHORTCUT_ARCHS[shortcuts]]


@dataclass
class Catalog:
    runs: dict[str, Run]  # run_id -> run, shipped first
    shipped: set[str] = field(default_factory=set)  # ids of the shipped runs
    yours: list[str] = field(default_factory=list)  # ids of the user's runs, oldest first
    damaged: list[DamagedRun] = field(default_factory=list)  # the user's runs that cannot be read
    not_runs: list[Path] = field(default_factory=list)  # folders that look like runs but prove none (never deleted)

    def label(self, run_id: str) -> str:
        run = self.runs[run_id]
        return f"{run.config()['model_name']} · {'shipped' if run_id in self.shipped else 'yours'} · {run_id}"

    def model_of(self, run_id: str) -> str:
        return self.runs[run_id].config()["model_name"]

    def depths(self) -> list[int]:
        """Depths with a plain or an option-A residual run on offer: what the
        depth choice beside the shortcut toggle offers."""
        depths = set()
        for run_id in self.runs:
            try:
                config = ModelConfig.from_name(self.model_of(run_id))
            except ResExplorerError:  # a run from elsewhere with a name this version does not know
                continue
            if config.shortcut == "A" and not config.zero_init_residual:
                depths.add(config.depth)
        return sorted(depths)

    def run_for(self, model: str) -> str | None:
        """The run that stands for a model: the shipped one, else the user's latest."""
        shipped = [i for i in self.runs if i in self.shipped and self.model_of(i) == model]
        yours = [i for i in self.yours if self.model_of(i) == model]
        return (shipped or yours[-1:] or [None])[0]

    def pair(self, depth: int, shortcuts: str) -> tuple[list[str], list[str]]:
        """The runs for a depth and a shortcut choice, and the models of those
        that have none on offer."""
        found, missing = [], []
        for model in pair_models(depth, shortcuts):
            run_id = self.run_for(model)
            (found if run_id else missing).append(run_id or model)
        return found, missing


def catalog(
    runs_dir: str | Path, trained_only: bool = False, include_shipped: bool = True, strict: bool = False
) -> Catalog:
    """Shipped and user runs, the one listing every page uses; trained_only
    keeps runs with a checkpoint to load. A run is shipped by where it lives
    (reference.is_shipped), so a runs folder pointed at the shipped folder
    does not make them the user's to delete, and a user's copy of a shipped
    run is theirs. An unreadable runs folder counts as empty, unless strict
    (the Runs page says why)."""
    shipped = RunStore(reference.REFERENCE_RUNS_DIR).list() if include_shipped else []
    try:
        yours, damaged, not_runs = RunStore(runs_dir).scan()
    except (ResExplorerError, OSError):
        if strict:
            raise
        yours, damaged, not_runs = [], [], []
    keep = [run for run in [*shipped, *yours] if not trained_only or run.checkpoint_path("last").exists()]
    runs = {run.run_id: run for run in keep}  # shipped first; a user's copy of one takes its place
    return Catalog(
        runs,
        {run_id for run_id, run in runs.items() if reference.is_shipped(run)},
        [run_id for run_id, run in runs.items() if not reference.is_shipped(run)],
        damaged,
        not_runs,
    )
