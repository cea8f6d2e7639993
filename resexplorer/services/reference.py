"""The shipped reference runs: which groups of models, on which recipe,
and reading them. Building them is the command line's job
(`python -m resexplorer build-reference`, resexplorer/cli/reference_build.py).

Each group is one finding of the paper. The Train page's presets and the
claims checked on the shipped runs are derived from the groups here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..app_files import ASSETS_DIR
from ..nets.config import ModelConfig
from ..runs.recipe import TrainConfig
from ..runs.store import Run, RunStore
from .paper import PAPER_ITERATIONS, paper_test_error

# Where the shipped reference runs live, in the run format.
REFERENCE_RUNS_DIR = ASSETS_DIR / "runs"

# One recipe for every reference run, so curves compare directly: the
# paper's optimiser (SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1)
# on a short cosine schedule. 16 epochs of the paper's step schedule were too
# few: ResNet-56 starts slower than ResNet-20 and was still 2.6 points behind
# when the first decay froze it. A one-epoch warm-up lets the 56-layer nets
# start at once; 30 epochs give them time to pass the 20-layer ones.
REFERENCE_RECIPE = TrainConfig(
    epochs=30, batch_size=128, lr=0.1, schedule="cosine", warmup_epochs=1.0, seed=0, eval_every=1
)


@dataclass(frozen=True)
class ReferenceGroup:
    name: str  # as the runs' config records it ("reference_group")
    title: str
    models: tuple[str, ...]
    shows: str  # what it shows, honestly
    preset: bool = True  # offered as a preset on the Train page


REFERENCE_GROUPS: dict[str, ReferenceGroup] = {
    group.name: group
    for group in (
        ReferenceGroup(
            "fig6",
            "Degradation (Fig. 6)",
            ("plain-20", "plain-56", "resnet-20", "resnet-56"),
            "The paper's Fig. 6 in small: the deeper plain net has higher training error than the shallow "
            "one (degradation), while the deeper ResNet does better than the shallow one.",
        ),
        ReferenceGroup(
            "shortcuts",
            "Shortcut options",
            ("plain-32", "resnet-32", "resnet-32-B", "resnet-32-C"),
            "Identity shortcuts with zero-padding (A) and projections where the shape changes (B), from "
            "section 3.3, and projections everywhere (C), from section 4.1, all fix degradation; they differ "
            "little (Table 3, section 4.1).",
        ),
        ReferenceGroup(
            "zero-init",
            "Zero-initialised residual branches",
            ("resnet-56-zero",),
            "The f(x) = 0 control: every residual branch starts at zero, so each block starts as the identity.",
            preset=False,  # one model alone: compared with fig6's resnet-56 on the Inside page
        ),
    )
}


def is_shipped(run: Run) -> bool:
    """Whether a run is one of the shipped reference runs, wherever it was
    listed from (a runs folder may point at the shipped folder itself)."""
    return run.path.resolve().parent == REFERENCE_RUNS_DIR.resolve()


def group_runs(store: RunStore, group: str) -> list[Run]:
    return [r for r in store.list() if r.config().get("reference_group") == group]


def reference_runs(group: str | None = None) -> list[Run]:
    """The shipped runs (of one group), in the groups' model order."""
    store = RunStore(REFERENCE_RUNS_DIR)
    runs = store.list() if group is None else group_runs(store, group)
    order = [name for g in REFERENCE_GROUPS.values() for name in g.models]

    def position(run: Run) -> int:
        name = run.config()["model_name"]
        return order.index(name) if name in order else len(order)

    return sorted(runs, key=position)


def _percent_range(values: Sequence[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f}%"


def recipe_note(runs: Sequence[Run]) -> str:
    """What reference runs are, said wherever they are drawn: a short
    schedule, one seed, a JPEG copy of CIFAR-10, so their errors do not
    compare with the paper's, only their order does."""
    recipe = REFERENCE_RECIPE
    n_train = runs[0].config()["data"]["n_train"] if runs else 50_000
    iterations = recipe.epochs * math.ceil(n_train / recipe.batch_size)
    warm_up = f" after a {recipe.warmup_epochs:g}-epoch warm-up" if recipe.warmup_epochs else ""
    note = (
        f"The reference runs trained {recipe.epochs} epochs ({iterations:,} iterations; the paper trained "
        f"{PAPER_ITERATIONS:,}) with a {recipe.schedule} schedule{warm_up}, one seed, on a JPEG copy of CIFAR-10"
    )
    ours = [100 * e for e in (r.summary()["final_test_error"] for r in runs) if e is not None]
    configs = [ModelConfig.from_name(r.config()["model_name"]) for r in runs]
    theirs = [found[0] for found in (paper_test_error(c.arch, c.depth) for c in configs) if found]
    if ours and theirs:
        return (
            f"{note}: their final test errors ({_percent_range(ours)}) do not compare with the paper's for these "
            f"models ({_percent_range(theirs)}); only their order does."
        )
    return f"{note}: their errors do not compare with the paper's; only their order does."
