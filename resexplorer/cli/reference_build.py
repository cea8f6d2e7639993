"""Building the shipped reference runs: train (or finish) each reference
group on the reference recipe, pack the runs small enough to ship, and
fill their analysis caches.

`python -m resexplorer build-reference --data FOLDER --out assets/runs`
trains every group from nothing, or continues the groups a killed build
left unfinished, so one rebuild can span several sittings. Each run's
config records the exact command, the machine and the wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..data.dataset import Dataset
from ..nets.config import ModelConfig
from ..runs.checkpoints import load_checkpoint, save_compact_checkpoint
from ..runs.recipe import RunOptions, TrainConfig
from ..runs.states import RunState
from ..runs.store import Run, RunStore
from ..services.analysis import ImagePool, precompute
from ..services.reference import (
    REFERENCE_GROUPS,
    REFERENCE_RECIPE,
    ReferenceGroup,
    group_runs,
)
from ..system import machine_info, resolve_device
from ..training.engine import Callback
from ..training.evaluation import evaluate_checkpoint
from ..training.launch import new_race, resumed_race

# A shipped checkpoint must re-evaluate to the test error its metrics claim
# within this (0.1 point); a half-precision copy that misses stays float32.
CLAIM_TOLERANCE = 0.001


def build_reference_runs(
    data: Dataset,
    out_dir: str | Path,
    command: str,
    groups: Sequence[ReferenceGroup] = tuple(REFERENCE_GROUPS.values()),
    device: str = "auto",
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda text: None,
    recipe: TrainConfig = REFERENCE_RECIPE,
) -> None:
    """Train (or finish) each group in turn; groups already done are skipped."""
    store = RunStore(out_dir)
    options = RunOptions(device=device)
    for reference_group in groups:
        group = reference_group.name
        existing = group_runs(store, group)
        if existing and all(r.status()["status"] == RunState.DONE for r in existing):
            log(f"{group}: done already, skipped")
            _pack_finished(existing, data, device, log)
            continue
        started = time.perf_counter()
        if existing:
            log(f"{group}: resuming {', '.join(r.run_id for r in existing)}")
            race = resumed_race(existing, data, callbacks, should_stop=should_stop, options=options)
            runs = existing
        else:
            log(f"{group}: training {', '.join(reference_group.models)}")
            models = [ModelConfig.from_name(n) for n in reference_group.models]
            extra = {"reference_group": group, "command": command, "machine": machine_info(resolve_device(device))}
            race, by_name = new_race(
                models, data, recipe, out_dir, callbacks, should_stop=should_stop, extra=extra, options=options
            )
            runs = list(by_name.values())
        race.run()
        sitting = {"machine": machine_info(resolve_device(device)), "wall_s": round(time.perf_counter() - started, 1)}
        for run in runs:  # a build may span sittings, on different machines
            sittings = run.config().get("sittings", []) + [sitting]
            run.update_config({"sittings": sittings, "build_wall_s": round(sum(s["wall_s"] for s in sittings), 1)})
        if should_stop():
            # Pack the moments kept so far (the newest epoch stays whole, to resume from), so
            # a group stopped between sittings is small enough to commit.
            for run in runs:
                pack_run(run, data, device)
            log(f"{group}: stopped; run the same command again to continue")
            return
        _pack_finished(runs, data, device, log)


def _pack_finished(runs: list[Run], data: Dataset, device: str, log: Callable[[str], None]) -> None:
    """Pack each finished run and fill its analysis cache (both idempotent)."""
    pool = ImagePool.from_dataset(data)
    for run in runs:
        if run.status()["status"] != RunState.DONE:
            continue
        if any(path.suffix == ".pt" for path in run.checkpoint_dir.iterdir()):  # not packed yet
            log(f"packed {run.run_id}: {pack_run(run, data, device)}")
        precompute(run, pool, device, log)


def _pack_checkpoint(source: Path, target: Path, claim: float | None, data: Dataset, device: str) -> dict:
    """The compact copy of one checkpoint, and how it was made."""
    ckpt = load_checkpoint(source)
    save_compact_checkpoint(ckpt, target, half=True)
    entry: dict = {"precision": "float16"}
    if claim is not None:
        measured = evaluate_checkpoint(load_checkpoint(target), data, device)["test_error"]
        if abs(measured - claim) > CLAIM_TOLERANCE:
            save_compact_checkpoint(ckpt, target, half=False)
            measured = evaluate_checkpoint(load_checkpoint(target), data, device)["test_error"]
            entry["precision"] = "float32"
        entry.update(claimed_test_error=claim, reevaluated_test_error=measured)
    return entry


def pack_run(run: Run, data: Dataset, device: str = "auto") -> dict:
    """Make a run small enough to ship: every kept checkpoint without
    optimizer state, in half precision, xz-compressed. An unfinished run
    keeps its newest epoch whole too, to resume from. Each checkpoint whose
    epoch claims a test error is re-evaluated from its compact copy; if that
    differs by more than CLAIM_TOLERANCE it is kept in float32 instead."""
    claims = {e["epoch"]: e["test_error"] for e in run.metrics("epoch") if e.get("test_error") is not None}
    finished = run.status()["status"] == RunState.DONE
    resume_from = None if finished else run.latest_checkpoint()
    report = {}
    for epoch in run.kept_epochs():
        source = run.checkpoint_path(epoch)  # the whole one, while there is one
        if source.name.endswith(".xz"):
            continue  # packed already
        target = source.with_name(source.name + ".xz")
        if not target.exists():  # (packed by an earlier sitting, which kept the whole one to resume from)
            report[str(epoch)] = _pack_checkpoint(source, target, claims.get(epoch), data, device)
        if source != resume_from:
            source.unlink()
    if finished:
        run.remove_leftovers()  # an older folder's last.pt, superseded by the packed end
    run.update_config({"packed": {**run.config().get("packed", {}), **report}})
    return report
