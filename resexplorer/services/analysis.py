"""Analyses of one run at one checkpoint, cached on disk: the Inside-the-nets
probes, sweeps and slices, and the TTA test-set scores.

Every analysis (probes.py, lesion.py, landscape.py, tta_eval.py) of a run's
checkpoint is computed once and kept as JSON beside the run, under
`<run>/analysis/epoch-NNNN/<kind>-<key>.json`, the key naming the settings;
the result records which images it saw. Any cached result answers, whatever
data source computed it, so the shipped runs' analyses (computed on
CIFAR-10 when they were built) show on machines without the data set.
Results go beside the run unless told otherwise (the app leaves the shipped
runs as they are) or the run folder is read-only: the user cache takes them
then. A page asks `cached()` first and computes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from ..data.dataset import Dataset
from ..data.samples import CIFAR10_CLASSES, cifar_samples
from ..data.sources import load_dataset, stratified_subset
from ..errors import ConfigError, DataError, ResExplorerError
from ..nets.probes import gradient_norms, inside_stats
from ..progress import Progress
from ..runs.checks import analysis_problem
from ..runs.store import Run, middle_epoch
from ..science.inference import LoadedModel, load_run_model
from ..science.landscape import interpolation, slice_1d, slice_2d
from ..science.lesion import random_lesion, single_block_lesion
from ..science.tta_eval import SCORING, evaluate_corruptions, evaluate_strategies
from ..storage import atomic_write_json, default_cache_dir


@dataclass
class Job:
    """What one analysis of one checkpoint works on: the loaded model, its
    images and labels on the model's device, the settings, and where to
    report progress."""

    run: Run
    loaded: LoadedModel
    pixels: torch.Tensor  # uint8: the TTA views work on pixels, before normalising
    labels: torch.Tensor
    settings: dict
    progress: Progress | None
    device: str

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @cached_property
    def images(self) -> torch.Tensor:
        """Normalised, as the model sees them (made only if asked for)."""
        return self.loaded.inputs(self.pixels)


def _interpolation(job: Job) -> dict:
    if 0 not in job.run.kept_epochs():
        raise ResExplorerError(f"{job.run.run_id} kept no checkpoint at initialisation, so there is no path to draw")
    initial = load_run_model(job.run, 0, job.device).model
    points = job.settings["points"]
    alphas = [round(i / (points - 1), 6) for i in range(points)]
    return interpolation(initial, job.model, job.images, job.labels, alphas, progress=job.progress).to_dict()


def _sliced(slice_fn: Callable, job: Job) -> dict:
    """A loss slice (landscape.slice_1d, slice_2d) of the job's settings."""
    settings = job.settings
    return slice_fn(
        job.model, job.images, job.labels, settings["points"], settings["span"], progress=job.progress
    ).to_dict()


@dataclass(frozen=True)
class Kind:
    """One analysis, in the one table every reader takes it from (KINDS):
    the cache's key and defaults, the dispatcher's function, the progress
    bar's title, the pages' figures, the reference build's list."""

    title: str  # where a person reads of it: progress, cancellation
    defaults: dict  # "split" and "n" (which images, how many) and the analysis's own settings
    run: Callable[[Job], dict]
    precompute: str = ""  # the reference build: "every moment", "at end" or "" (left to the user)


EVERY_MOMENT, AT_END = "every moment", "at end"

KINDS: dict[str, Kind] = {
    # Fig. 7 + branch ratios; "ratio" names the measure, so results of the
    # older ||F(x)|| / ||x|| (cached without it) are not read as this one
    "inside": Kind(
        "layer responses",
        {"split": "test", "n": 1000, "ratio": "to shortcut"},
        lambda job: inside_stats(job.model, job.images).to_dict(),
        EVERY_MOMENT,
    ),
    "gradients": Kind(
        "gradient norms",
        {"split": "train", "n": 128},  # one training batch
        lambda job: gradient_norms(job.model, job.images, job.labels).to_dict(),
        EVERY_MOMENT,
    ),
    "lesion_single": Kind(
        "single-block deletion sweep",
        {"split": "test", "n": 1000},
        lambda job: single_block_lesion(job.model, job.images, job.labels, job.progress).to_dict(),
        AT_END,
    ),
    "lesion_random": Kind(
        "random-deletion sweep",
        {"split": "test", "n": 1000, "max_k": 10, "draws": 3},
        lambda job: random_lesion(
            job.model, job.images, job.labels, job.settings["max_k"], job.settings["draws"], progress=job.progress
        ).to_dict(),
        AT_END,
    ),
    "landscape_1d": Kind(
        "1-D loss slice",
        {"split": "train", "n": 2000, "points": 41, "span": 1.0},
        lambda job: _sliced(slice_1d, job),
        AT_END,
    ),
    "interpolation": Kind(
        "path from initialisation", {"split": "train", "n": 2000, "points": 26}, _interpolation, AT_END
    ),
    "landscape_2d": Kind(
        "2-D loss slice",
        {"split": "train", "n": 1000, "points": 11, "span": 1.0},  # points x points evaluations
        lambda job: _sliced(slice_2d, job),
    ),
    # Every TTA strategy x merge, then the same under 15 corruptions. "scoring" names what the numbers
    # mean (tta_eval.SCORING), so a record scored otherwise is not taken for a current one: see older_tta_record.
    "tta_testset": Kind(
        "test-set scoring of every strategy",
        {"split": "test", "n": 10000, "scoring": SCORING},
        lambda job: evaluate_strategies(job.model, job.pixels, job.labels, job.loaded.normalize, job.progress),
        AT_END,
    ),
    "tta_corruptions": Kind(
        "scoring under corruptions",
        {"split": "test", "n": 500, "scoring": SCORING},
        lambda job: evaluate_corruptions(job.model, job.pixels, job.labels, job.loaded.normalize, job.progress),
        AT_END,
    ),
}
ANALYSIS_DIR = "analysis"


@dataclass
class ImagePool:
    """Where probe images come from: one data source's two splits, or the
    shipped CIFAR-10 samples when the source cannot be loaded here."""

    name: str  # recorded with each result: "cifar10", a folder name, "samples"
    classes: list[str]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # split -> (uint8 images, labels)
    note: str = ""  # said in the UI when the pool is a fallback

    @classmethod
    def from_dataset(cls, data: Dataset) -> ImagePool:
        name = data.source if data.source in ("cifar10", "synthetic") else Path(data.source).name
        return cls(
            name,
            list(data.classes),
            {"train": (data.train.images, data.train.labels), "test": (data.test.images, data.test.labels)},
        )

    def take(self, split: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.splits.get(split) or self.splits["test"]
        if n < len(labels):
            keep = stratified_subset(labels, n, seed)
            return images[keep], labels[keep]
        return images, labels


def sample_pool() -> ImagePool:
    images, labels, _ = cifar_samples()
    note = (
        f"These analyses use the {len(labels)} CIFAR-10 test images shipped in assets/samples "
        "(for training images too), so their numbers are noisier than on 1,000+ images."
    )
    return ImagePool("samples", CIFAR10_CLASSES, {"test": (images, labels)}, note)


def image_pool(source: str) -> ImagePool:
    """The data source's images, or the shipped samples if it cannot load."""
    try:
        data = load_dataset(source)
    except DataError as err:
        pool = sample_pool()
        pool.note = f"{err} {pool.note}"  # the error says why the source is unusable
        return pool
    return ImagePool.from_dataset(data)


def pool_for(run: Run, pool: ImagePool) -> ImagePool:
    """`pool` if it has the classes the run learned; else the shipped CIFAR-10
    samples if the run learned CIFAR-10 (a shipped run while the sidebar
    names another data source); else a DataError that says what to pick."""
    learned = list(run.config().get("data", {}).get("classes", []))
    if learned == list(pool.classes):
        return pool
    if learned == CIFAR10_CLASSES:
        samples = sample_pool()
        samples.note = (
            f"{run.config()['model_name']} learned CIFAR-10, not the classes of the data source {pool.name!r}. "
            + samples.note
        )
        return samples
    raise DataError(
        f"{run.run_id} learned the classes {', '.join(learned)}, but the images come from {pool.name} "
        f"with {', '.join(pool.classes)}; pick the data source it was trained on in the sidebar"
    )


def kept_moments(run: Run) -> list[tuple[str, int]]:
    """(label, epoch) for each kept checkpoint: initialisation, the first
    epoch, the middle, the end; an unfinished run adds its latest epoch."""
    kept = run.kept_epochs()
    latest = run.committed_epoch()
    if latest not in kept and run.latest_checkpoint() is not None:
        kept = kept + [latest]
    planned = run.config()["train"]["epochs"]
    moments = []
    for epoch in kept:
        if epoch == 0:
            label = "initialisation"
        elif epoch == 1:
            label = "after epoch 1"
        elif epoch == planned:
            label = f"end (epoch {epoch})"
        elif epoch == middle_epoch(planned):
            label = f"middle (epoch {epoch})"
        else:
            label = f"latest (epoch {epoch})"
        moments.append((label, epoch))
    return moments


MOMENTS = ("initialisation", "after epoch 1", "middle", "end")


def nearest_moment(run: Run, wanted: str) -> tuple[str, int] | None:
    """(label, epoch) of the run's kept checkpoint nearest a moment of
    MOMENTS (ties to the earlier); an unfinished run answers the moments it
    has not reached with its latest epoch."""
    moments = kept_moments(run)
    if not moments:
        return None
    planned = run.config()["train"]["epochs"]
    target = {"initialisation": 0, "after epoch 1": 1, "middle": middle_epoch(planned), "end": planned}[wanted]
    return min(moments, key=lambda m: (abs(m[1] - target), m[1]))


def _settings(kind: str, overrides: dict) -> dict:
    if kind not in KINDS:
        raise ConfigError(f"unknown analysis {kind!r}; known: {', '.join(KINDS)}")
    return {**KINDS[kind].defaults, **{k: v for k, v in overrides.items() if v is not None}}


def _file_name(kind: str, settings: dict) -> str:
    key = json.dumps(settings, sort_keys=True)
    return f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.json"


def _locations(run: Run, epoch: int) -> list[Path]:
    """Beside the run first; the user cache for read-only run folders."""
    sub = Path(ANALYSIS_DIR) / f"epoch-{epoch:04d}"
    return [run.path / sub, default_cache_dir() / ANALYSIS_DIR / run.run_id / sub]


def cached(run: Run, epoch: int, kind: str, **overrides) -> dict | None:
    return _read(run, epoch, kind, _file_name(kind, _settings(kind, overrides)))


def shipped_beside(run: Run, epoch: int, kind: str, **overrides) -> bool:
    """Whether this result lies in the run's own folder: for a shipped run,
    that it came with it (what a user computes for one goes to their cache)."""
    return (_locations(run, epoch)[0] / _file_name(kind, _settings(kind, overrides))).is_file()


def older_tta_record(run: Run, epoch: int, kind: str, **overrides) -> dict | None:
    """The newest cached TTA record (tta_testset, tta_corruptions) of these
    settings scored before the current tta_eval.SCORING, or None. The page
    shows it, with what it lacks marked, until the run is scored again;
    records of scoring 1 predate the setting, so their settings lack it."""
    settings = _settings(kind, overrides)
    for version in range(settings["scoring"] - 1, 0, -1):
        older = (
            {**settings, "scoring": version} if version > 1 else {k: v for k, v in settings.items() if k != "scoring"}
        )
        found = _read(run, epoch, kind, _file_name(kind, older))
        if found is not None:
            return found
    return None


def _read(run: Run, epoch: int, kind: str, name: str) -> dict | None:
    """The cached result, checked against what its kind's readers take from
    it (checks.analysis_problem): a damaged or misshapen one counts as
    missing, so it is recomputed, never drawn."""
    for folder in _locations(run, epoch):
        path = folder / name
        if path.is_file():
            try:
                record = json.loads(path.read_bytes().decode("utf-8"))
            except (OSError, ValueError, RecursionError):  # damaged, or nested deeper than a parser goes
                continue
            if analysis_problem(kind, record) is None:
                return record
    return None


def _checkpoint_epoch(run: Run, epoch: int) -> int | str:
    return epoch if epoch in run.kept_epochs() else "last"


def compute(
    run: Run,
    epoch: int,
    kind: str,
    pool: ImagePool,
    progress: Progress | None = None,
    device: str = "auto",
    store_beside: bool = True,
    **overrides,
) -> dict:
    """Run one analysis of a run's checkpoint and cache the result."""
    settings = _settings(kind, overrides)
    loaded = load_run_model(run, _checkpoint_epoch(run, epoch), device)
    if loaded.classes != list(pool.classes):
        raise DataError(
            f"{run.run_id} learned the classes {', '.join(loaded.classes)}, but the images come from {pool.name} "
            f"with {', '.join(pool.classes)}; pick the data source it was trained on in the sidebar"
        )
    raw, labels = pool.take(settings["split"], settings["n"])
    job = Job(run, loaded, raw.to(loaded.device), labels.to(loaded.device), settings, progress, device)
    result = KINDS[kind].run(job)
    result = {
        "kind": kind,
        "run_id": run.run_id,
        "epoch": epoch,
        "images": pool.name,
        "n_images": len(labels),
        "settings": settings,
        **result,
    }
    places = _locations(run, epoch)
    _store(places if store_beside else places[1:], _file_name(kind, settings), result)
    return result


def precomputed(kind: str, at_end: bool) -> bool:
    """Whether the reference build computes this analysis at a kept
    checkpoint (at_end: the run's last), so the page opens with it drawn:
    the cheap probes at every kept checkpoint, the slow sweeps at the end
    only (the 2-D slice is left to users)."""
    when = KINDS[kind].precompute
    return when == EVERY_MOMENT or (at_end and when == AT_END)


def precompute(run: Run, pool: ImagePool, device: str = "auto", log: Callable[[str], None] = lambda text: None) -> None:
    """Fill a finished run's analysis cache; what is there already stays."""
    moments = [epoch for _, epoch in kept_moments(run)]
    for epoch in moments:
        for kind in [k for k in KINDS if precomputed(k, at_end=epoch == moments[-1])]:
            if cached(run, epoch, kind) is None:
                compute(run, epoch, kind, pool, device=device)
                log(f"{run.run_id}: {kind} at epoch {epoch}")


def _store(places: list[Path], name: str, result: dict) -> None:
    for folder in places:
        try:
            atomic_write_json(result, folder / name)
            return
        except OSError:
            continue  # read-only: try the next place
