"""Every run a page can offer: the shipped reference runs and the user's,
with labels and sensible defaults (the pages that look inside trained nets
share this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import reference
from .errors import ResExplorerError
from .runs import Run, RunStore


@dataclass
class Catalog:
    runs: dict[str, Run]  # run_id -> run, shipped first
    shipped: set[str] = field(default_factory=set)  # ids of the shipped runs
    yours: list[str] = field(default_factory=list)  # ids of the user's runs, oldest first

    def label(self, run_id: str) -> str:
        run = self.runs[run_id]
        return f"{run.config()['model_name']} · {'shipped' if run_id in self.shipped else 'yours'} · {run_id}"

    def defaults(self, shipped_models: Sequence[str], fallback: int) -> list[str]:
        """These models of the shipped Fig. 6 group, else the user's latest
        `fallback` runs."""
        fig6 = {run.config()["model_name"]: run.run_id for run in reference.reference_runs("fig6")}
        picked = [fig6[name] for name in shipped_models if name in fig6 and fig6[name] in self.runs]
        return picked or self.yours[-fallback:]


def catalog(runs_dir: str | Path, trained_only: bool = False) -> Catalog:
    """Shipped and user runs; trained_only keeps runs with a checkpoint to
    load. An unreadable runs folder counts as empty."""
    shipped = RunStore(reference.REFERENCE_RUNS_DIR).list()
    try:
        yours = RunStore(runs_dir).list()
    except ResExplorerError:
        yours = []
    keep = [run for run in [*shipped, *yours] if not trained_only or run.checkpoint_path("last").exists()]
    ids = {run.run_id for run in shipped}
    return Catalog({run.run_id: run for run in keep}, {r.run_id for r in keep if r.run_id in ids}, [r.run_id for r in keep if r.run_id not in ids])
