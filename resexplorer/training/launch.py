"""Glue for one training job: data + models + run store + race.

The CLI and the UI's background jobs both start training here, so a run
made from either is the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from ..data.dataset import Dataset
from ..data.sources import Normalizer, stratified_subset
from ..errors import ConfigError
from ..nets.config import ModelConfig
from ..nets.probes import epoch_probe
from ..runs.recipe import RunOptions, TrainConfig
from ..runs.store import Run, RunStore
from ..storage import HeldLock
from ..system import library_versions, race_devices, uses_channels_last
from . import distributed
from .distributed import ALONE, Ranks
from .engine import Callback, Probe, Race, new_member
from .recording import RunRecorder, resume_member

PROBE_IMAGES = 500  # test images the per-epoch probes look at


def default_probes(data: Dataset) -> list[Probe]:
    """Fig. 7 responses and branch ratios on a fixed, class-balanced set of
    test images, recorded at every epoch end."""
    indices = stratified_subset(data.test.labels, PROBE_IMAGES, seed=0)
    images = Normalizer(data.mean, data.std)(data.test.images[indices])
    return [epoch_probe(images)]


def new_race(
    models: Sequence[ModelConfig],
    data: Dataset,
    config: TrainConfig,
    runs_root: str | Path,
    callbacks: Iterable[Callback] = (),
    probes: Iterable[Probe] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    extra: dict | None = None,
    ranks: Ranks = ALONE,
    device: torch.device | None = None,
    options: RunOptions | None = None,
) -> tuple[Race, dict[str, Run]]:
    """One new run per model, and the race that will train them: call its
    run() to start (the caller may first hand the runs to a progress writer).
    `options`: how they run (the defaults if not said). Under torchrun (ranks) only rank 0 makes runs;
    `device` is then the rank's."""
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"each model can race once per job; got {', '.join(names)}")
    models = [
        m
        if m.num_classes == data.num_classes
        else ModelConfig.from_dict({**m.to_dict(), "num_classes": data.num_classes})
        for m in models
    ]
    options = options or RunOptions()
    devices = [device] if device is not None else race_devices(options.device, len(models))
    data_info = data.describe()

    def create() -> dict[str, Run]:
        store = RunStore(runs_root)
        runs = {m.name: store.create(m, config, data_info, {**versions, **(extra or {})}, options) for m in models}
        if ranks.distributed:
            runs = {name: _with_ranks(run, ranks) for name, run in runs.items()}
        return runs

    versions = {"versions": library_versions()}
    runs = distributed.writer_first(ranks, create) or {}
    placed = [devices[i % len(devices)] for i in range(len(models))]
    members = [new_member(m, config, d, uses_channels_last(d)) for m, d in zip(models, placed)]
    claims = {name: run.writer() for name, run in runs.items()} if ranks.writer else {}
    race = _assembled(
        members, runs, data, config, options, data_info, claims, devices[0], callbacks, probes, should_stop, ranks
    )
    return race, runs


def _assembled(
    members, runs: dict, data, config, options, data_info, claims, device, callbacks, probes, should_stop, ranks
) -> Race:
    """The race of these members, recording into their runs (rank 0 alone
    writes): the last step of a new race and of a resumed one alike."""
    writing: list[Callback] = [RunRecorder(runs, config, data_info, claims), *callbacks] if ranks.writer else []
    probes = default_probes(data) if probes is None else probes
    return Race(members, data, config, device, writing, probes, should_stop, ranks, options)


def _with_ranks(run: Run, ranks: Ranks) -> Run:
    """Say in the run's config how many processes trained it (torchrun)."""
    run.update_config({"world_size": ranks.world})
    return run


def _claim_all(runs: Sequence[Run]) -> list[HeldLock]:
    """Each run's writer claim, in order: all of them, or none."""
    claims = []
    try:
        for run in runs:
            claims.append(run.writer())
    except Exception:
        for claim in claims:
            claim.release()
        raise
    return claims


def resumed_race(
    runs: Sequence[Run],
    data: Dataset,
    callbacks: Iterable[Callback] = (),
    probes: Iterable[Probe] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    options: RunOptions | None = None,
    ranks: Ranks = ALONE,
    rank_device: torch.device | None = None,
) -> Race:
    """The race that continues runs from their last checkpoints, on the same
    recipe, run as `options` say (default: as the first run ran; a resume
    on another device says so here); not started, as new_race. Under
    torchrun (ranks) rank 0 claims and tidies the runs first; every rank
    then loads their checkpoints onto its own device (rank_device)."""
    config = runs[0].train_config()
    for run in runs[1:]:
        differ = [k for k, v in run.train_config().to_dict().items() if config.to_dict()[k] != v]
        if differ:
            raise ConfigError(
                f"runs resumed together must share one training config: {runs[0].run_id} and {run.run_id} "
                f"differ in {', '.join(differ)}; resume them one at a time"
            )
    options = options or runs[0].run_options()
    devices = [rank_device] if rank_device is not None else race_devices(options.device, len(runs))

    def claim() -> list[HeldLock]:
        claims = _claim_all(runs)  # before anything is truncated: a second resume is refused untouched
        for run in runs:  # ours alone now: what a killed writer half-wrote can go
            run.remove_leftovers()
        return claims

    claims = distributed.writer_first(ranks, claim) or []
    placed = [devices[i % len(devices)] for i in range(len(runs))]
    members = [resume_member(r, d, uses_channels_last(d), tidy=ranks.writer) for r, d in zip(runs, placed)]
    data_info = runs[0].config()["data"]
    if data_info.get("classes") != list(data.classes) or data_info.get("n_train") != len(data.train):
        raise ConfigError(
            f"{', '.join(r.run_id for r in runs)}: resume needs the data the run was trained on "
            f"({data_info.get('source')}, "
            f"{data_info.get('n_train')} training images); got {data.source} with {len(data.train)}"
        )
    by_name = {m.name: r for m, r in zip(members, runs)}
    claimed = {m.name: c for m, c in zip(members, claims)}
    return _assembled(
        members, by_name, data, config, options, data_info, claimed, devices[0], callbacks, probes, should_stop, ranks
    )
