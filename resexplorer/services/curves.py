"""Error curves as plain data, read from the run store for the figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..runs.store import Run


@dataclass
class Curve:
    """One model's training and test error over training (fractions)."""

    label: str  # what the legend says
    model: str  # model name: colours follow it
    arch: str
    depth: int
    steps_per_epoch: float
    train_epoch: list[float] = field(default_factory=list)  # x of the training windows
    train_error: list[float] = field(default_factory=list)
    test_epoch: list[int] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    status: str = ""
    planned_epochs: float = 0.0  # the run's whole schedule; 0 where unknown

    @property
    def empty(self) -> bool:
        return not self.train_error and not self.test_error


def curve_from_run(run: Run, label: str | None = None) -> Curve:
    config = run.config()
    records = run.metrics()
    train = [r for r in records if r.get("kind") == "train"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    tested = [r for r in epochs if r.get("test_error") is not None]
    steps_per_epoch = (
        epochs[-1]["step"] / epochs[-1]["epoch"]
        if epochs
        else (train[-1]["step"] / train[-1]["epoch"] if train else 1.0)
    )
    return Curve(
        label=label or config["model_name"],
        model=config["model_name"],
        arch=config["model"]["arch"],
        depth=config["model"]["depth"],
        steps_per_epoch=steps_per_epoch,
        train_epoch=[r["epoch"] for r in train],
        train_error=[r["error"] for r in train],
        test_epoch=[r["epoch"] for r in tested],
        test_error=[r["test_error"] for r in tested],
        status=run.status().get("status", ""),
        planned_epochs=float(config["train"]["epochs"]),
    )


def references_for(models: Iterable[str], references: Sequence[Curve], default_models: Sequence[str]) -> list[Curve]:
    """The reference curves worth drawing under runs of these models: the
    same models' (the comparison that means something), else those of
    default_models (a figure of its own). Drawing every reference run would
    bury the live curves under a dozen faded ones."""
    wanted = set(models)
    same = [c for c in references if c.model in wanted]
    return same or [c for c in references if c.model in default_models]


def curves_csv(runs: list[Run]) -> str:
    """Every metric record of the runs, one CSV row each (for download)."""
    columns = [
        "run_id",
        "model",
        "kind",
        "epoch",
        "step",
        "loss",
        "error",
        "train_loss",
        "train_error",
        "test_loss",
        "test_error",
        "lr",
        "images_per_s",
        "wall_s",
    ]
    lines = [",".join(columns)]
    for run in runs:
        model = run.config()["model_name"]
        for record in run.metrics():
            row = {**record, "run_id": run.run_id, "model": model}
            lines.append(",".join("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return "\n".join(lines) + "\n"
