"""The shipped reference runs: which models, which recipe, how to rebuild.

`python -m resexplorer build-reference --data FOLDER --out assets/runs`
trains every group below from nothing, or continues the groups a killed
build left unfinished, so one rebuild can span several sittings. Each run's
config records the exact command, the machine and the wall time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from ..data.dataset import Dataset
from ..nets.config import ModelConfig
from ..system import machine_info, resolve_device
from ..training.engine import Callback, TrainConfig
from ..training.evaluation import evaluate_checkpoint
from ..training.launch import resume_race, start_race
from ..training.runs import Run, RunStore, load_checkpoint, save_compact_checkpoint
from .analysis import ImagePool, precompute

# Where the shipped reference runs live, in the run format.
REFERENCE_RUNS_DIR = Path(__file__).resolve().parents[2] / "assets" / "runs"

# A shipped checkpoint must re-evaluate to the test error its metrics claim
# within this (0.1 point); a half-precision copy that misses stays float32.
CLAIM_TOLERANCE = 0.001

# One recipe for every reference run, so curves compare directly: the
# paper's optimiser (SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1)
# on a short cosine schedule. 16 epochs of the paper's step schedule were too
# few: ResNet-56 starts slower than ResNet-20 and was still 2.6 points behind
# when the first decay froze it. A one-epoch warm-up lets the 56-layer nets
# start at once; 30 epochs give them time to pass the 20-layer ones.
REFERENCE_RECIPE = TrainConfig(epochs=30, batch_size=128, lr=0.1, schedule="cosine", warmup_epochs=1.0, seed=0, eval_every=1)

REFERENCE_GROUPS: dict[str, list[str]] = {
    # Fig. 6, minimal: degradation of plain nets, depth gains of ResNets
    "fig6": ["plain-20", "plain-56", "resnet-20", "resnet-56"],
    # section 3.3: shortcut options A/B/C against the plain net
    "shortcuts": ["plain-32", "resnet-32", "resnet-32-B", "resnet-32-C"],
    # the f(x) = 0 control: every residual branch starts at zero
    "zero-init": ["resnet-56-zero"],
}


def group_runs(store: RunStore, group: str) -> list[Run]:
    return [r for r in store.list() if r.config().get("reference_group") == group]


def reference_runs(group: str | None = None) -> list[Run]:
    """The shipped runs (of one group), in the groups' model order."""
    store = RunStore(REFERENCE_RUNS_DIR)
    runs = store.list() if group is None else group_runs(store, group)
    order = [name for names in REFERENCE_GROUPS.values() for name in names]
    return sorted(runs, key=lambda r: order.index(r.config()["model_name"]) if r.config()["model_name"] in order else len(order))


def build_reference_runs(
    data: Dataset,
    out_dir: str | Path,
    command: str,
    groups: Iterable[str] | None = None,
    device: str = "auto",
    callbacks: Iterable[Callback] = (),
    should_stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda text: None,
) -> None:
    """Train (or finish) each group in turn; groups already done are skipped."""
    store = RunStore(out_dir)
    recipe = TrainConfig.from_dict({**REFERENCE_RECIPE.to_dict(), "device": device})
    for group in groups or REFERENCE_GROUPS:
        existing = group_runs(store, group)
        if existing and all(r.status()["status"] == "done" for r in existing):
            log(f"{group}: done already, skipped")
            _pack_finished(existing, data, device, log)
            continue
        started = time.perf_counter()
        if existing:
            log(f"{group}: resuming {', '.join(r.run_id for r in existing)}")
            race = resume_race(existing, data, callbacks, should_stop=should_stop, device=device)
            runs = existing
        else:
            log(f"{group}: training {', '.join(REFERENCE_GROUPS[group])}")
            models = [ModelConfig.from_name(n) for n in REFERENCE_GROUPS[group]]
            extra = {"reference_group": group, "command": command, "machine": machine_info(resolve_device(device))}
            race, by_name = start_race(models, data, recipe, out_dir, callbacks, should_stop=should_stop, extra=extra)
            runs = list(by_name.values())
        race.run()
        sitting = {"machine": machine_info(resolve_device(device)), "wall_s": round(time.perf_counter() - started, 1)}
        for run in runs:  # a build may span sittings, on different machines
            sittings = run.config().get("sittings", []) + [sitting]
            run.update_config({"sittings": sittings, "build_wall_s": round(sum(s["wall_s"] for s in sittings), 1)})
        if should_stop():
            # Pack the moments kept so far (last.pt stays, to resume from), so
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
        if run.status()["status"] != "done":
            continue
        if (run.checkpoint_dir / "last.pt").exists():
            log(f"packed {run.run_id}: {pack_run(run, data, device)}")
        precompute(run, pool, device, log)


def pack_run(run: Run, data: Dataset, device: str = "auto") -> dict:
    """Make a run small enough to ship: every kept checkpoint without
    optimizer state, in half precision, xz-compressed. A finished run loses
    last.pt too (the newest kept epoch answers for it); an unfinished one
    keeps it, to resume from. Each checkpoint whose epoch claims a test
    error is re-evaluated from its compact copy; if that differs by more
    than CLAIM_TOLERANCE it is kept in float32 instead."""
    claims = {e["epoch"]: e["test_error"] for e in run.metrics("epoch") if e.get("test_error") is not None}
    report = {}
    for epoch in run.kept_epochs():
        source = run.checkpoint_path(epoch)
        if source.name.endswith(".xz"):
            continue  # packed already
        ckpt = load_checkpoint(source)
        target = source.with_name(source.name + ".xz")
        save_compact_checkpoint(ckpt, target, half=True)
        entry = {"precision": "float16"}
        if epoch in claims:
            measured = evaluate_checkpoint(load_checkpoint(target), data, device)["test_error"]
            if abs(measured - claims[epoch]) > CLAIM_TOLERANCE:
                save_compact_checkpoint(ckpt, target, half=False)
                measured = evaluate_checkpoint(load_checkpoint(target), data, device)["test_error"]
                entry["precision"] = "float32"
            entry.update(claimed_test_error=claims[epoch], reevaluated_test_error=measured)
        source.unlink()
        report[str(epoch)] = entry
    if run.status()["status"] == "done":
        (run.checkpoint_dir / "last.pt").unlink(missing_ok=True)
    run.update_config({"packed": {**run.config().get("packed", {}), **report}})
    return report
