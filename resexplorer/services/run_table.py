"""Runs as a table and as a group: a row per run for the Runs page (from
Run.summary()), which runs its ticked rows name, which runs can be resumed,
and how far a group of runs has trained (Home's "still training" note)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from ..errors import ResExplorerError
from ..runs import states

if TYPE_CHECKING:
    from ..runs.store import Run


@dataclass(frozen=True)
class RunColumn:
    """A column of the Runs table: its name (a row's key), its cell from a
    run's summary and whether the run is shipped, what its header's help
    says, its header when not its name, and whether it holds an error in %
    (a number, so the table sorts by it)."""

    name: str
    cell: Callable[[dict, bool], object]
    help: str | None = None
    label: str | None = None
    percent: bool = False


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 2)


# The Runs table's columns, in its order: what people read first (which model,
# when, how well it did), the long run id last.
RUN_COLUMNS = (
    RunColumn("model", lambda s, _: s["model"]),
    RunColumn("when", lambda s, _: when(s["created"]), "When the run was created, in this machine's time"),
    RunColumn(
        "final test error %", lambda s, _: _percent(s["final_test_error"]), "After the last epoch trained", percent=True
    ),
    RunColumn(
        "final train error %",
        lambda s, _: _percent(s["final_train_error"]),
        "After the last epoch trained",
        percent=True,
    ),
    RunColumn(
        "best test error %", lambda s, _: _percent(s["best_test_error"]), "The lowest of any epoch", percent=True
    ),
    RunColumn("status", lambda s, _: s["status"]),
    RunColumn("epochs", lambda s, _: f"{s['epochs_done']}/{s['epochs']}", "Trained / planned"),
    RunColumn("where", lambda _, shipped: "shipped" if shipped else "yours", "Shipped with the app, or yours"),
    RunColumn("run", lambda s, _: s["run_id"], label="run id"),
)
COLUMN_NAMES = tuple(column.name for column in RUN_COLUMNS)


def when(created: str | None, zone: tzinfo | None = None) -> str:
    """ "2026-11-29 13:05": a run's creation time (the ISO time its config
    keeps, in UTC) in `zone`, this machine's own by default. The text sorts
    as the times do; a value that is no such time is shown as it is."""
    if not created:
        return ""
    try:
        moment = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return str(created)
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M")


def run_rows(runs: Iterable[Run], shipped: Collection[str]) -> tuple[list[dict], list[str]]:
    """A table row per readable run, its keys RUN_COLUMNS' names in order
    ("shipped" for the ids in `shipped`, else "yours"), and a message for
    each run that cannot be read."""
    rows, problems = [], []
    for run in runs:
        try:
            s = run.summary()
        except ResExplorerError as err:
            problems.append(f"{run.path.name}: {err}")
            continue
        problems.extend(f"{run.run_id}: {problem}" for problem in s["problems"])
        rows.append({column.name: column.cell(s, run.run_id in shipped) for column in RUN_COLUMNS})
    return rows, problems


def ticked_runs(row_ids: Sequence[str], positions: Iterable[int]) -> list[str]:
    """The run ids of a table's ticked rows, in the table's order. A table's
    selection names rows by their position in the data it was given, however
    the user sorted it, so `row_ids` are the rows' ids in that data's order;
    a position past its end (a row gone since) names no run."""
    return [row_ids[p] for p in sorted(set(positions)) if 0 <= p < len(row_ids)]


def positions_of(run_ids: Iterable[str], row_ids: Sequence[str]) -> list[int]:
    """The positions of these runs among a table's rows (`row_ids`), those
    no longer there left out: ticked rows carried over to a table whose rows
    changed under the selection."""
    wanted = set(run_ids)
    return [position for position, run_id in enumerate(row_ids) if run_id in wanted]


def curve_label(run: Run) -> str:
    """ "resnet-56 (a1b2c3)": the model and the end of the run id, so runs of one model tell apart."""
    return f"{run.config()['model_name']} ({run.run_id[-6:]})"


def resumable(runs: Iterable[Run]) -> list[Run]:
    """The runs whose status a resume continues from."""
    return [r for r in runs if states.resumable(r.status().get("status"))]


def epochs_reached(run: Run) -> int:
    """The last epoch the run completed (0 before the first)."""
    return run.committed_epoch()


def group_progress(runs: Sequence[Run]) -> tuple[int, int]:
    """(epochs every run has reached, epochs planned for the longest): a
    group still being built ships part-trained between sittings."""
    reached = min((epochs_reached(r) for r in runs), default=0)
    planned = max((r.config()["train"]["epochs"] for r in runs), default=0)
    return reached, planned
