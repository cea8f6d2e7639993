"""Runs as a table and as a group: a row per run for the Runs page (from
Run.summary()), which runs can be resumed, and how far a group of runs has
trained (Home's "still training" note)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from ..errors import ResExplorerError

if TYPE_CHECKING:
    from ..runs.store import Run

RESUMABLE = ("interrupted", "cancelled", "failed", "diverged")  # statuses a resume continues from


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 2)


def run_rows(runs: Iterable[Run], shipped: Collection[str]) -> tuple[list[dict], list[str]]:
    """A table row per readable run (errors in %, "shipped" for the ids in
    `shipped`, else "yours"), and a message for each run that cannot be read."""
    rows, problems = [], []
    for run in runs:
        try:
            s = run.summary()
        except ResExplorerError as err:
            problems.append(f"{run.path.name}: {err}")
            continue
        problems.extend(f"{run.run_id}: {problem}" for problem in s["problems"])
        rows.append(
            {
                "run": s["run_id"],
                "model": s["model"],
                "status": s["status"],
                "where": "shipped" if run.run_id in shipped else "yours",
                "epochs": f"{s['epochs_done']}/{s['epochs']}",
                "final test error %": _percent(s["final_test_error"]),
                "best test error %": _percent(s["best_test_error"]),
                "final train error %": _percent(s["final_train_error"]),
                "created": s["created"],
            }
        )
    return rows, problems


def row_labels(rows: Sequence[dict]) -> dict[str, str]:
    """{run id: "model · status · run id"}, what a picker of these rows shows."""
    return {r["run"]: f"{r['model']} · {r['status']} · {r['run']}" for r in rows}


def curve_label(run: Run) -> str:
    """ "resnet-56 (a1b2c3)": the model and the end of the run id, so runs of one model tell apart."""
    return f"{run.config()['model_name']} ({run.run_id[-6:]})"


def resumable(runs: Iterable[Run]) -> list[Run]:
    """The runs whose status a resume continues from."""
    return [r for r in runs if r.status().get("status") in RESUMABLE]


def epochs_reached(run: Run) -> int:
    """The last epoch the run completed (0 before the first)."""
    return run.committed_epoch()


def group_progress(runs: Sequence[Run]) -> tuple[int, int]:
    """(epochs every run has reached, epochs planned for the longest): a
    group still being built ships part-trained between sittings."""
    reached = min((epochs_reached(r) for r in runs), default=0)
    planned = max((r.config()["train"]["epochs"] for r in runs), default=0)
    return reached, planned
