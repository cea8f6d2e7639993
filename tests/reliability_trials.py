"""Reliability trials: a hostile user and a crashing machine against ResNet Explorer.

A report, not a test (pytest does not collect it): each trial is one small,
independent check that the product behaves as a careful user expects when
training is killed (kill -9, at each named point of resexplorer/faults.py and
at random moments), when run files are damaged, when checkpoints are crafted,
when runs are deleted, when two processes want the same thing, when the
numbers are bad, when data folders are odd, and when the disk is full; and
(a third round, I) when the runs folder holds other programs' folders,
when an archive to import is hostile (a zip bomb, too big for the disk, too
many runs, ids that are not ids, misshapen cached analyses, two imports of
it at once), when folders are files, read-only or cannot be made, when
training is sent SIGTERM or SIGHUP, when a dead worker is a zombie, when the
time zone is far from UTC, and whether each of the app's uploaders takes
what the package takes.

"Survived" means: no Python traceback reaches the user; a refused mistake of
the command line exits with code 2 and one line that names the file, run or
setting concerned (0 where the action legitimately succeeds); no data is lost
(good runs still listed and loadable, completed epochs kept); nothing from a
malicious file is executed; nothing outside the runs folder is deleted.

    .venv/bin/python tests/reliability_trials.py [--only A --only B ...] [--verbose] [--no-mount] [--keep]

It needs no real CIFAR-10 (the built-in synthetic set and small generated
image folders), works only in a temporary folder (its own data cache too),
runs at most two trials at a time, and exits with status 0 whatever it
finds. The disk-full trials mount a small tmpfs (root only); where that
fails, or with --no-mount, the command line runs in a child of this script
whose writes to the 'full' folder fail with ENOSPC, as a full disk's do.
The read-only trials bind-mount a folder read-only (root); where that
fails, or with --no-mount, its permission bits are taken away instead.
--verbose also prints what the product said in each trial, and its time.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import itertools
import json
import os
import pickle
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import torch  # noqa: E402
from image_corpus import bomb_png  # noqa: E402
from test_foreign_folders import FOREIGN, OWNERS_FILE  # noqa: E402

from resexplorer import errors, faults, processes, storage  # noqa: E402
from resexplorer.cli import main as cli_main  # noqa: E402
from resexplorer.data.synthetic import make_synthetic, write_image_folder  # noqa: E402
from resexplorer.errors import ResExplorerError, RunError  # noqa: E402
from resexplorer.runs import store as run_store  # noqa: E402
from resexplorer.runs import transfer  # noqa: E402
from resexplorer.runs.checkpoints import load_checkpoint, load_run_checkpoint, save_checkpoint  # noqa: E402
from resexplorer.runs.recipe import RunOptions, TrainConfig  # noqa: E402
from resexplorer.runs.store import Run, RunStore  # noqa: E402
from resexplorer.services import analysis, reference  # noqa: E402
from resexplorer.training.jobs import JOBS_FOLDER, Job, JobManager  # noqa: E402

CATEGORIES = {
    "A": "kill -9",
    "B": "damaged run files",
    "C": "crafted checkpoints",
    "D": "deletion",
    "E": "concurrency",
    "F": "bad numbers",
    "G": "odd data folders",
    "H": "disk full",
    "I": "third round",  # foreign folders, hostile archives, file-system trouble, signals
}
EPOCHS = 4
# resnet-8 alone on a small slice of the synthetic set, epochs not yet said
ONE_MODEL = [
    *("train", "--model", "resnet-8", "--data", "synthetic", "--device", "cpu"),
    *("--batch-size", "32", "--train-subset", "64", "--test-subset", "32", "--log-every", "1"),
]
RACE = [*ONE_MODEL[:3], "--model", "plain-8", *ONE_MODEL[3:], "--epochs", str(EPOCHS)]
# Reaches in that race (two models, two steps an epoch): a run is created
# twice, a checkpoint written 2 + 8 times, a step logged 16 times, and each
# epoch point reached 8 times (resnet-8 then plain-8 at each epoch end).
KILLS = [
    "run-created@1",  # plain-8's run not made yet
    "run-created@2",
    "checkpoint-unrenamed@1",  # before any checkpoint is in place
    "checkpoint-unrenamed@3",
    "checkpoint-unrenamed@10",  # plain-8's last epoch
    "step-logged@1",
    "step-logged@9",
    "step-logged@16",
    # 1: resnet-8's first epoch end; 3: resnet-8 at epoch 2, plain-8 behind at 1; 8: plain-8's last
    *(f"{point}@{n}" for point in faults.KILL_POINTS[3:] for n in (1, 3, 8)),
]
RANDOM_KILLS = 3
CUT_AT = "epoch-tidied@4"  # both models have committed epoch 2 of 4
TIMEOUT_S = 240
COMPARED = ("test_error", "train_loss")  # per epoch, against the uninterrupted race
TQDM_LINE = re.compile(r"\d+%\||\d+/\d+ \[")


class NotSurvived(Exception):
    """The product did not behave as a careful user expects."""


# --- the session: one temporary folder, and what the trials share ----------------


class Session:
    def __init__(self, base: Path, mount: bool):
        self.base = base
        self.mount = mount
        self.cache = base / "cache"  # RESEXPLORER_CACHE of every process here: the user's cache is never touched
        self.cache.mkdir()
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.good: dict[str, Path] = {}  # model -> run of the uninterrupted race
        self.cut: dict[str, Path] = {}  # model -> run of the race killed after epoch 2
        self.reference: dict[str, list[dict]] = {}  # model -> epoch records of the uninterrupted race
        self.images: Path | None = None  # a small image folder
        self.setup_error: str | None = None

    def folder(self, name: str) -> Path:
        with self._lock:
            number = next(self._numbers)
        path = self.base / "trials" / f"{number:03d}-{re.sub(r'[^A-Za-z0-9]+', '-', name)[:40].strip('-')}"
        path.mkdir(parents=True)
        return path

    def ready(self) -> None:
        if self.setup_error:
            raise NotSurvived(f"the set-up failed: {self.setup_error}")


S: Session  # set in main()


# --- running the command line -------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def child_env(**extra) -> dict:
    drop = (faults.KILL_AT, "RESEXPLORER_RUNS", "RESEXPLORER_DATA")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=str(ROOT), RESEXPLORER_CACHE=str(S.cache), OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "resexplorer", *map(str, args)],
        cwd=ROOT,
        env=env or child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def finish(process: subprocess.Popen, timeout: float = TIMEOUT_S) -> Outcome:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise NotSurvived(f"still running after {timeout:.0f} s; last words: {last_line(err)}") from None
    return Outcome(process.returncode, out, err)


def cli(*args, env: dict | None = None, timeout: float = TIMEOUT_S) -> Outcome:
    return finish(start(*args, env=env), timeout)


def message_lines(text: str) -> list[str]:
    """What a user reads on stderr, without the progress bars."""
    return [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip() and not TQDM_LINE.search(line)]


def last_line(text: str) -> str:
    lines = message_lines(text)
    return lines[-1][:300] if lines else "(nothing)"


def no_traceback(result: Outcome, what: str) -> None:
    if "Traceback" in result.out + result.err:
        raise NotSurvived(f"{what}: a traceback (exit {result.code}): {last_line(result.err + result.out)}")


def succeeded(result: Outcome, what: str) -> Outcome:
    no_traceback(result, what)
    if result.code != 0:
        raise NotSurvived(f"{what}: exit {result.code}, expected 0: {last_line(result.err)}")
    return result


NOTES = threading.local()  # what the product said in the current trial (--verbose shows it)


def note(text: str) -> None:
    NOTES.said = [*getattr(NOTES, "said", []), text]


def refused(result: Outcome, what: str, *names: str) -> str:
    """Exit 2 and one line that names one of `names`; the line."""
    no_traceback(result, what)
    lines = message_lines(result.err)
    note(f"{what}: exit {result.code}: {' | '.join(lines)[:600]}")
    if result.code != 2:
        raise NotSurvived(f"{what}: exit {result.code}, expected 2: {' | '.join(lines)[:300] or '(nothing said)'}")
    if len(lines) != 1:
        shown = " | ".join(line if len(line) < 200 else line[:200] + "..." for line in lines)
        raise NotSurvived(f"{what}: {len(lines)} lines instead of one: {shown}")
    if names and not any(name.lower() in lines[0].lower() for name in names):
        raise NotSurvived(f"{what}: the message names none of {', '.join(names)}: {lines[0][:300]}")
    return lines[0]


def json_of(result: Outcome, what: str) -> dict:
    """The JSON object a --json command printed last."""
    try:
        printed = json.loads(result.out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        printed = None
    if not isinstance(printed, dict) or "test_error" not in printed:
        raise NotSurvived(f"{what}: --json printed {result.out.strip()[:200]!r}")
    return printed


def product(call: Callable, what: str):
    """A product call made by the trial itself; its refusal is a finding."""
    try:
        return call()
    except ResExplorerError as err:
        raise NotSurvived(f"{what}: {type(err).__name__}: {str(err)[:300]}") from err


# --- run folders -------------------------------------------------------------------------


def run_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def by_model(root: Path) -> dict[str, Path]:
    return {Run(p).config()["model_name"]: p for p in run_folders(root)}


def copy_run(source: Path, root: Path, name: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(source, root / (name or source.name), symlinks=True))


def epochs_of(path: Path) -> list[int]:
    return [r["epoch"] for r in Run(path).metrics("epoch")]


def file_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def no_new_run(runs: Path, what: str) -> None:
    if run_folders(runs):
        raise NotSurvived(f"{what}: left run folder(s) {', '.join(p.name for p in run_folders(runs))}")


def finished_like_the_uninterrupted_race(path: Path, before: list[dict], what: str) -> None:
    """Epochs 1..4, done, the epoch records that were there before kept as
    they were, and the uninterrupted race's numbers."""
    run = Run(path)
    records = product(lambda: run.metrics("epoch"), what)
    epochs = [r["epoch"] for r in records]
    if epochs != list(range(1, EPOCHS + 1)):
        raise NotSurvived(f"{what}: {path.name} ends with epoch records {epochs}, expected 1..{EPOCHS}")
    status = run.status()
    if status.get("status") != "done":
        raise NotSurvived(f"{what}: {path.name} is {status.get('status')} ({status.get('message', '')[:150]})")
    if records[: len(before)] != before:
        changed = [b["epoch"] for a, b in zip(records, before) if a != b]
        raise NotSurvived(f"{what}: {path.name} changed its completed epoch record(s) {changed}")
    truth = S.reference[run.config()["model_name"]]
    for mine, true in zip(records, truth):
        for key in COMPARED:
            a, b = mine.get(key), true.get(key)
            if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-5):
                raise NotSurvived(
                    f"{what}: {path.name} epoch {mine['epoch']} {key} {a} differs from the uninterrupted run's {b}"
                )


# --- set-up: an uninterrupted race, a race killed after epoch 2, an image folder ----


def setup() -> None:
    def race(name: str, kill: str | None) -> Outcome:
        env = child_env(**{faults.KILL_AT: kill}) if kill else child_env()
        return cli(*RACE, "--runs", S.base / name, env=env)

    try:
        with ThreadPoolExecutor(2) as pool:
            good = pool.submit(race, "good", None)
            cut = pool.submit(race, "cut", CUT_AT)
            S.images = write_image_folder(make_synthetic(n_train=30, n_test=15, num_classes=3, seed=5), S.base / "img")
            good, cut = good.result(), cut.result()
        if good.code != 0:
            raise RuntimeError(f"the uninterrupted race exited {good.code}: {last_line(good.err)}")
        if cut.code != -signal.SIGKILL:
            raise RuntimeError(f"the race killed at {CUT_AT} exited {cut.code}: {last_line(cut.err)}")
        S.good, S.cut = by_model(S.base / "good"), by_model(S.base / "cut")
        S.reference = {model: Run(path).metrics("epoch") for model, path in S.good.items()}
        if sorted(S.good) != ["plain-8", "resnet-8"] or any(len(r) != EPOCHS for r in S.reference.values()):
            raise RuntimeError(f"the uninterrupted race left {S.reference}")
        if any(epochs_of(p) != [1, 2] for p in S.cut.values()):
            raise RuntimeError(f"the race killed at {CUT_AT} left epochs {[epochs_of(p) for p in S.cut.values()]}")
    except Exception as err:  # every trial that needs them says so
        S.setup_error = f"{type(err).__name__}: {err}"[:300]


# --- the trials ------------------------------------------------------------------------


@dataclass
class Trial:
    category: str
    name: str
    run: Callable[[], None]
    serial: bool = False  # in the main thread, alone (patches this process, or times other processes)


TRIALS: list[Trial] = []


def trial(category: str, name: str, function: Callable, *args, serial: bool = False) -> None:
    TRIALS.append(Trial(category, name, partial(function, *args), serial))


# A. kill -9 -------------------------------------------------------------------------


def kill_race(kill: str | None, seed: int | None = None) -> None:
    S.ready()
    runs = S.folder(f"kill-{kill or seed}") / "runs"
    if kill:
        result = cli(*RACE, "--runs", runs, env=child_env(**{faults.KILL_AT: kill}))
    else:  # from outside, at a random moment once the first run folder is there
        process = start(*RACE, "--runs", runs)
        deadline = time.monotonic() + TIMEOUT_S
        while process.poll() is None and not run_folders(runs) and time.monotonic() < deadline:
            time.sleep(0.01)
        delay = random.Random(seed).uniform(0.05, 1.5)
        time.sleep(delay)
        note(f"SIGKILL {delay:.2f} s after the first run folder appeared")
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        result = finish(process)
    if result.code != -signal.SIGKILL:
        raise NotSurvived(f"the race was not killed: exit {result.code}: {last_line(result.err)}")

    folders = run_folders(runs)
    listing = succeeded(cli("runs", "--runs", runs), "runs")
    unlisted = [p.name for p in folders if p.name not in listing.out]
    if not folders or unlisted or "damaged" in listing.out:
        raise NotSurvived(f"runs lists {listing.out.strip()[:300]!r}; run folders {[p.name for p in folders]}")
    before = {}
    for path in folders:
        run = Run(path)
        records = product(lambda run=run: run.metrics("epoch"), "metrics")
        epochs = [r["epoch"] for r in records]
        if epochs != list(range(1, len(epochs) + 1)):
            raise NotSurvived(f"{path.name} has epoch records {epochs}")
        if run.problems():
            raise NotSurvived(f"{path.name}: {'; '.join(run.problems())}")
        before[path] = records
        has = run.checkpoint_path("last")
        note(f"{path.name}: epochs {epochs}, {has.name if has.exists() else 'no checkpoint'}, {run.status()['status']}")
        if has.exists():
            ckpt = product(lambda run=run: load_run_checkpoint(run), f"{path.name}'s last checkpoint")
            if ckpt["epoch"] != len(epochs):
                raise NotSurvived(f"{path.name}: last checkpoint of epoch {ckpt['epoch']}, metrics reach {len(epochs)}")
            shown = succeeded(cli("evaluate", path, "--data", "synthetic", "--json"), f"evaluate {path.name}")
            json_of(shown, f"evaluate {path.name}")
        else:  # killed before its first checkpoint: evaluating it is a mistake, said in one line
            refused(cli("evaluate", path, "--data", "synthetic"), f"evaluate {path.name}", path.name, "checkpoint")
    succeeded(cli("resume", *folders, "--data", "synthetic"), "resume")
    for path in folders:
        finished_like_the_uninterrupted_race(path, before[path], "after resume")


for _kill in KILLS:
    trial("A", f"kill at {_kill}, list, evaluate, resume", kill_race, _kill)
for _seed in range(RANDOM_KILLS):
    trial("A", f"kill -9 from outside at a random moment (seed {_seed})", kill_race, None, _seed)


# B. damaged run files ------------------------------------------------------------------


def _edit_config(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps(change(config)))

    return damage


def _without(key: str) -> Callable[[Path], None]:
    return _edit_config(lambda config: {k: v for k, v in config.items() if k != key})


def _truncate_half(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _insert_metric_line(line: bytes) -> Callable[[Path], None]:
    """A bad line in the middle of the metrics, not a torn last one."""

    def damage(path: Path) -> None:
        lines = (path / "metrics.jsonl").read_bytes().splitlines(keepends=True)
        (path / "metrics.jsonl").write_bytes(b"".join([*lines[:3], line + b"\n", *lines[3:]]))

    return damage


def _append_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path / name, "ab") as handle:
            handle.write(data)

    return damage


CONFIG_DAMAGE = {
    "config.json not UTF-8": lambda p: (p / "config.json").write_bytes(b"\xff\xfe{\x00}"),
    "config.json not an object": lambda p: (p / "config.json").write_text("[1, 2]"),
    "config.json truncated": lambda p: _truncate_half(p / "config.json"),
    "config.json lacks model_name": _without("model_name"),
    "config.json lacks model": _without("model"),
    "config.json lacks train": _without("train"),
    "config.json lacks data": _without("data"),
    "config.json bad model settings": _edit_config(lambda c: {**c, "model": {**c["model"], "depth": "deep"}}),
    "config.json bad train settings": _edit_config(lambda c: {**c, "train": {**c["train"], "epochs": "four"}}),
    "config.json missing": lambda p: (p / "config.json").unlink(),
}
METRICS_DAMAGE = {
    "metrics.jsonl non-UTF-8 line": _insert_metric_line(b'{"kind":"train","step":\xff}'),
    "metrics.jsonl non-object line": _insert_metric_line(b"[1, 2]"),
    "metrics.jsonl invalid-JSON middle line": _insert_metric_line(b"{kind: epoch"),
    "metrics.jsonl epoch record lacking keys": _insert_metric_line(b'{"kind":"epoch","epoch":1,"step":2}'),
    "metrics.jsonl torn last line": _append_bytes("metrics.jsonl", b'{"kind":"train","st'),
}
STATUS_DAMAGE = {
    "status.json pid not a number": lambda p: (p / "status.json").write_text(
        json.dumps({"status": "running", "pid": "abc", "started": 0, "host": socket.gethostname()})
    ),
    "status.json not an object": lambda p: (p / "status.json").write_text("[]"),
    "status.json missing": lambda p: (p / "status.json").unlink(),
}
DAMAGE = {
    **{n: ("config", d) for n, d in CONFIG_DAMAGE.items()},
    **{n: ("metrics", d) for n, d in METRICS_DAMAGE.items()},
    **{n: ("status", d) for n, d in STATUS_DAMAGE.items()},
}


def damaged_folder(name: str) -> tuple[Path, Path, Path, list[dict]]:
    """A runs folder with a good finished run and a damaged copy of an
    unfinished one (killed after epoch 2 of 4, so resumable); the usable
    epoch records the damaged run had."""
    S.ready()
    root = S.folder(name) / "runs"
    good = copy_run(S.good["resnet-8"], root)
    damaged = copy_run(S.cut["resnet-8"], root, "20260101-000000-resnet-8-damaged")
    before = Run(damaged).metrics("epoch")
    DAMAGE[name][1](damaged)
    return root, good, damaged, before


def damaged_runs_listing(name: str) -> None:
    kind = DAMAGE[name][0]
    root, good, damaged, _ = damaged_folder(name)
    listing = succeeded(cli("runs", "--runs", root), "runs")
    lines = [" ".join(line.split()) for line in listing.out.splitlines() if damaged.name in line]
    for line in lines:
        note(line)
    if good.name not in listing.out:
        raise NotSurvived(f"runs does not list the good run: {listing.out.strip()[:300]}")
    if not lines:
        raise NotSurvived(f"runs does not name the damaged run: {listing.out.strip()[:300]}")
    if kind == "config" and not any("damaged" in line for line in lines):
        raise NotSurvived(f"runs does not say the run is damaged: {' | '.join(lines)[:300]}")
    if kind == "metrics" and "torn" not in name and not any("metrics.jsonl" in line for line in lines):
        raise NotSurvived(f"runs lists the run without a word about its metrics: {' | '.join(lines)[:300]}")
    if kind == "status" and any(" running " in f" {line} " for line in lines):
        raise NotSurvived(f"runs shows a dead run as running: {' | '.join(lines)[:300]}")


def damaged_evaluate(name: str) -> None:
    kind = DAMAGE[name][0]
    _, _, damaged, _ = damaged_folder(name)
    result = cli("evaluate", damaged, "--data", "synthetic", "--json")
    if kind == "config":
        refused(result, "evaluate", damaged.name)
    else:
        json_of(succeeded(result, "evaluate"), "evaluate")


def damaged_resume(name: str) -> None:
    kind = DAMAGE[name][0]
    _, _, damaged, before = damaged_folder(name)
    kept = file_bytes(damaged)
    result = cli("resume", damaged, "--data", "synthetic")
    if kind == "config":
        refused(result, "resume", damaged.name)
        if file_bytes(damaged) != kept:
            raise NotSurvived("a refused resume changed the run's files")
    else:
        succeeded(result, "resume")
        finished_like_the_uninterrupted_race(damaged, before, "after resume")


for _name in DAMAGE:
    trial("B", f"{_name}: runs lists the good run and names it", damaged_runs_listing, _name)
    trial("B", f"{_name}: evaluate", damaged_evaluate, _name)
    trial("B", f"{_name}: resume", damaged_resume, _name)


# C. crafted checkpoints ---------------------------------------------------------------


class Planted:
    """Unpickling this makes a folder: the marker of code run from a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _resaved(change: Callable[[dict, Path], dict]) -> Callable[[Path, Path], None]:
    def craft(target: Path, marker: Path) -> None:
        save_checkpoint(change(load_checkpoint(target), marker), target)

    return craft


def _flip_64_bytes(target: Path, marker: Path) -> None:
    raw = bytearray(target.read_bytes())
    middle = len(raw) // 2
    for i in range(middle, middle + 64):
        raw[i] ^= 0xFF
    target.write_bytes(bytes(raw))


def _foreign_zip(target: Path, marker: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("notes/readme.txt", "a zip, but not a torch file")


CRAFTED = {
    "a torch file whose unpickling would make a marker": _resaved(lambda c, m: {**c, "model": Planted(m)}),
    "a plain pickle whose unpickling would make a marker": lambda t, m: t.write_bytes(pickle.dumps(Planted(m))),
    "model not a dict": _resaved(lambda c, m: {**c, "model": [1, 2, 3]}),
    "data without mean": _resaved(lambda c, m: {**c, "data": {k: v for k, v in c["data"].items() if k != "mean"}}),
    "version a string": _resaved(lambda c, m: {**c, "version": "1"}),
    "optimizer missing": _resaved(lambda c, m: {k: v for k, v in c.items() if k != "optimizer"}),
    "64 flipped bytes": _flip_64_bytes,
    "truncated file": lambda t, m: _truncate_half(t),
    "empty file": lambda t, m: t.write_bytes(b""),
    "a zip that is not a torch file": _foreign_zip,
    "a newer format version": _resaved(lambda c, m: {**c, "version": 99}),
}


def crafted_run(name: str) -> tuple[Path, Path, Path]:
    S.ready()
    base = S.folder(name)
    path = copy_run(S.cut["resnet-8"], base / "runs")
    target = Run(path).checkpoint_path("last")
    marker = base / "MARKER-code-ran"
    CRAFTED[name](target, marker)
    return path, target, marker


def crafted_evaluate(name: str) -> None:
    path, target, marker = crafted_run(name)
    result = cli("evaluate", path, "--data", "synthetic", "--json")
    if marker.exists():
        raise NotSurvived(f"evaluate ran code from the file: {marker.name} was made")
    if name == "optimizer missing":
        json_of(succeeded(result, "evaluate"), "evaluate")
    else:
        refused(result, "evaluate", target.name, path.name)


def crafted_resume(name: str) -> None:
    path, target, marker = crafted_run(name)
    before, kept = Run(path).metrics("epoch"), file_bytes(path)
    result = cli("resume", path, "--data", "synthetic")
    if marker.exists():
        raise NotSurvived(f"resume ran code from the file: {marker.name} was made")
    if result.code == 0:  # resuming from an earlier epoch would do too, if every completed epoch stays
        succeeded(result, "resume")
        finished_like_the_uninterrupted_race(path, before, "after resume")
        return
    refused(result, "resume", target.name, path.name)
    now = file_bytes(path)
    if now != kept:
        changed = sorted(name for name in set(now) | set(kept) if now.get(name) != kept.get(name))
        raise NotSurvived(f"a refused resume changed {', '.join(changed)}")


for _name in CRAFTED:
    trial("C", f"{_name}: evaluate", crafted_evaluate, _name)
    trial("C", f"{_name}: resume", crafted_resume, _name)


# D. deletion (the store, in this process) ------------------------------------------


def _store_with_a_run(name: str) -> tuple[Path, RunStore, Path]:
    S.ready()
    base = S.folder(name)
    good = copy_run(S.good["resnet-8"], base / "runs")
    return base, RunStore(base / "runs"), good


def _refused_delete(store: RunStore, run_id: str) -> str:
    try:
        store.delete(run_id)
    except ResExplorerError as err:
        note(f"delete({run_id!r}): {err}")
        return str(err)
    raise NotSurvived(f"delete({run_id!r}) was not refused")


def _intact(path: Path, files: dict[str, bytes], what: str) -> None:
    if not path.is_dir() or file_bytes(path) != files:
        raise NotSurvived(f"{what} was deleted or changed")


def delete_outside(how: str) -> None:
    base, store, good = _store_with_a_run(f"delete-{how}")
    outside = copy_run(S.good["plain-8"], base, "x")
    files, good_files = file_bytes(outside), file_bytes(good)
    run_id = {"../x": "../x", "absolute path": str(outside.resolve()), ".": ".", "empty name": ""}[how]
    _refused_delete(store, run_id)
    _intact(outside, files, "the folder outside the runs folder")
    _intact(good, good_files, "the run in the runs folder")


def delete_symlinked_run() -> None:
    base, store, good = _store_with_a_run("delete-link")
    target = copy_run(S.good["plain-8"], base, "elsewhere")
    files = file_bytes(target)
    (store.root / "linked-run").symlink_to(target, target_is_directory=True)
    try:
        store.delete("linked-run")
        note("delete('linked-run'): done")
    except ResExplorerError as err:
        note(f"delete('linked-run'): {err}")
    _intact(target, files, "the link's target")


def delete_run_with_a_link_inside() -> None:
    """A run whose checkpoints folder is a link to a folder outside: the run
    may go, what the link points at stays."""
    base, store, good = _store_with_a_run("delete-link-inside")
    outside = Path(shutil.copytree(good / "checkpoints", base / "my-checkpoints"))
    files = file_bytes(outside)
    shutil.rmtree(good / "checkpoints")
    (good / "checkpoints").symlink_to(outside, target_is_directory=True)
    try:
        store.delete(good.name)
        note(f"delete({good.name!r}): done")
    except ResExplorerError as err:
        note(f"delete({good.name!r}): {err}")
    _intact(outside, files, "the folder the run's checkpoints link pointed at")


def delete_running_run() -> None:
    _, store, good = _store_with_a_run("delete-running")
    Run(good).set_status("running")  # this live process
    files = file_bytes(good)
    message = _refused_delete(store, good.name)
    if good.name not in message:
        raise NotSurvived(f"the refusal does not name the run: {message}")
    _intact(good, files, "the running run")


def delete_damaged_run() -> None:
    _, store, good = _store_with_a_run("delete-damaged")
    damaged = copy_run(S.cut["resnet-8"], store.root, "20260101-000000-resnet-8-damaged")
    (damaged / "config.json").write_bytes(b"\xff\xfe{\x00}")
    files = file_bytes(good)
    try:
        store.delete(damaged.name)
    except ResExplorerError as err:
        raise NotSurvived(f"a damaged run cannot be deleted: {err}") from err
    if damaged.exists():
        raise NotSurvived("the damaged run is still there")
    _intact(good, files, "the good run beside it")


@contextlib.contextmanager
def shipped_copy(base: Path) -> Iterator[Path]:
    """A copy of one shipped reference run, standing in for the shipped
    folder (is_shipped reads reference.REFERENCE_RUNS_DIR): the repository's
    own runs are never at risk."""
    shipped = sorted(p for p in reference.REFERENCE_RUNS_DIR.iterdir() if (p / "config.json").is_file())
    if not shipped:
        raise NotSurvived("no shipped reference run found")
    folder = base / "shipped"
    copy_run(shipped[0], folder)
    real, reference.REFERENCE_RUNS_DIR = reference.REFERENCE_RUNS_DIR, folder
    try:
        yield folder
    finally:
        reference.REFERENCE_RUNS_DIR = real


def _the_apps_deletable(store: RunStore) -> list[Run]:
    """What the Runs page offers to delete: the listed runs not shipped (pages/runs.py)."""
    return [run for run in store.list() if not reference.is_shipped(run)]


def delete_shipped_as_the_runs_folder() -> None:
    S.ready()
    base = S.folder("delete-shipped-folder")
    with shipped_copy(base) as shipped:
        files = file_bytes(shipped)
        (base / "my-runs").symlink_to(shipped, target_is_directory=True)  # the runs folder set to the shipped one
        for root in (shipped, base / "my-runs"):
            listed, offered = RunStore(root).list(), _the_apps_deletable(RunStore(root))
            if not listed:
                raise NotSurvived(f"the shipped run is not listed from {root.name}")
            if offered:
                raise NotSurvived(f"the app would offer the shipped run {offered[0].run_id} for deletion")
        _intact(shipped, files, "the shipped run")


def delete_shipped_linked_in() -> None:
    S.ready()
    base = S.folder("delete-shipped-link")
    with shipped_copy(base) as shipped:
        run = run_folders(shipped)[0]
        files = file_bytes(run)
        store = RunStore(base / "runs")
        store.root.mkdir()
        (store.root / run.name).symlink_to(run, target_is_directory=True)
        if _the_apps_deletable(store):
            raise NotSurvived("the app would offer a shipped run linked into the runs folder for deletion")
        _refused_delete(store, run.name)
        _intact(run, files, "the shipped run")


for _how in ("../x", "absolute path", ".", "empty name"):
    trial("D", f"delete {_how!r}: refused, nothing outside the runs folder goes", delete_outside, _how)
trial("D", "delete a symlinked run folder: its target stays", delete_symlinked_run)
trial("D", "delete a run whose checkpoints folder links outside: that folder stays", delete_run_with_a_link_inside)
trial("D", "delete a running run (this live process): refused by name", delete_running_run)
trial("D", "delete a damaged run: it goes, the good one stays", delete_damaged_run)
trial("D", "the shipped folder as the runs folder: none to delete", delete_shipped_as_the_runs_folder, serial=True)
trial("D", "a shipped run linked into the runs folder: not deletable", delete_shipped_linked_in, serial=True)


# E. concurrency -------------------------------------------------------------------------


def two_resumes_of_one_run() -> None:
    S.ready()
    runs = S.folder("two-resumes") / "runs"
    longer = ["--epochs", "6", "--train-subset", "512"]  # five epochs left to resume: seconds, so the two overlap
    killed = cli(*ONE_MODEL, *longer, "--runs", runs, env=child_env(**{faults.KILL_AT: "epoch-tidied@1"}))
    if killed.code != -signal.SIGKILL or len(run_folders(runs)) != 1:
        raise NotSurvived(f"the run to resume was not made: exit {killed.code}: {last_line(killed.err)}")
    path = run_folders(runs)[0]
    first, second = start("resume", path, "--data", "synthetic"), start("resume", path, "--data", "synthetic")
    results = sorted([finish(first), finish(second)], key=lambda r: r.code)
    for result in results:
        no_traceback(result, "resume")
    note(f"exits {[r.code for r in results]}")
    if [r.code for r in results] != [0, 2]:
        raise NotSurvived(f"exits {[r.code for r in results]}, expected one 0 and one 2: {last_line(results[-1].err)}")
    refused(results[1], "the second resume", path.name)
    epochs = epochs_of(path)
    if epochs != list(range(1, 7)) or Run(path).status().get("status") != "done":
        raise NotSurvived(f"the run ends with epochs {epochs}, {Run(path).status().get('status')}")


def two_trains_into_one_folder() -> None:
    S.ready()
    runs = S.folder("two-trains") / "runs"
    argv = [*ONE_MODEL, "--epochs", "2", "--runs", runs]
    results = [finish(p) for p in [start(*argv), start(*argv)]]
    for result in results:
        succeeded(result, "train")
    folders = run_folders(runs)
    if len(folders) != 2:
        raise NotSurvived(f"two trains left {len(folders)} run folder(s)")
    for path in folders:
        if epochs_of(path) != [1, 2] or Run(path).status().get("status") != "done":
            raise NotSurvived(f"{path.name}: epochs {epochs_of(path)}, {Run(path).status().get('status')}")


JOB_CONFIG = TrainConfig(epochs=40, batch_size=32, train_subset=512, test_subset=32)
JOB_OPTIONS = RunOptions(device="cpu")


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _stop_job(job: Job) -> None:
    """Cancel a job of this trial; kill its worker (by its pid) if it does not end."""
    if job.active:
        job.cancel()
        if not _wait(lambda: not job.active, 60):
            pid = job.info().get("pid")
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)


def _queued_job(manager: JobManager) -> Job:
    return manager.start_training(["resnet-8"], "synthetic", JOB_CONFIG, options=JOB_OPTIONS)


def _job_trained(job: Job, what: str) -> None:
    runs = job.runs()
    if job.status()["state"] != "cancelled" or not runs:
        raise NotSurvived(f"{what} ended {job.status()['state']}: {job.status().get('message', '')[:200]}")
    for run in runs:
        epochs = epochs_of(run.path)
        if epochs != list(range(1, len(epochs) + 1)) or run.status().get("status") != "cancelled":
            raise NotSurvived(f"{what}'s run {run.run_id}: epochs {epochs}, {run.status().get('status')}")


def second_job_from_another_folder() -> None:
    """Job A trains; a Start from another runs folder waits in the one queue
    (the machine is one), and once it leaves the queue it never trains."""
    base = S.folder("two-jobs")
    first = _queued_job(JobManager(base / "a"))
    second = None
    try:
        if not _wait(lambda: first.status()["state"] == "running", 120):
            raise NotSurvived(f"the first job did not start: {first.status().get('message', '')[:200]}")
        second = _queued_job(JobManager(base / "b"))
        time.sleep(3)
        if second.status()["state"] != "queued":
            raise NotSurvived(f"a second job did not wait while one trained: it is {second.status()['state']}")
        note("second Start: queued behind the first")
        second.cancel()
        if second.status()["state"] != "cancelled":
            raise NotSurvived(f"a job that left the queue reads {second.status()['state']}")
    finally:
        _stop_job(first)
        if second is not None:
            _stop_job(second)
    _job_trained(first, "the first job")
    no_new_run(base / "b", "the job that left the queue")


def two_jobs_started_at_once() -> None:
    """Two Starts from two runs folders back to back: one trains, the other
    waits in the queue, and starts once the first ends."""
    base = S.folder("two-jobs-at-once")
    jobs = [_queued_job(JobManager(base / name)) for name in ("a", "b")]
    try:
        if not _wait(lambda: any(job.status()["state"] == "running" for job in jobs), 120):
            raise NotSurvived(f"neither job started: {[job.status()['state'] for job in jobs]}")
        time.sleep(2)
        states = [str(job.status()["state"]) for job in jobs]
        note(f"states while one trains: {states}")
        if sorted(states) != ["queued", "running"]:
            raise NotSurvived(f"two Starts at once should give one training and one queued: {states}")
        first = next(job for job in jobs if job.status()["state"] == "running")
        later = next(job for job in jobs if job is not first)
        _stop_job(first)
        if not _wait(lambda: later.status()["state"] == "running", 120):
            raise NotSurvived(f"the queued job did not start once the machine freed: {later.status()['state']}")
    finally:
        for job in jobs:
            _stop_job(job)
    for job in jobs:
        _job_trained(job, f"job {job.job_id}")


trial("E", "two resumes of one run at once: the second refused by name", two_resumes_of_one_run)
trial("E", "two trains into one runs folder at once: both finish, two runs", two_trains_into_one_folder)
trial("E", "a second app job from another runs folder: queued, and left", second_job_from_another_folder, serial=True)
trial(
    "E",
    "two app jobs started at once from two folders: one trains, then the other",
    two_jobs_started_at_once,
    serial=True,
)


# F. bad numbers on train ----------------------------------------------------------------

BAD_NUMBERS = [
    ("--seed 2**70", ["--seed", str(2**70)], "seed"),
    ("--seed -1", ["--seed", "-1"], "seed"),
    ("--epochs 0", ["--epochs", "0"], "epochs"),
    ("--epochs many", ["--epochs", "many"], "epochs"),
    ("--lr nan", ["--lr", "nan"], "lr"),
    ("--lr -1", ["--lr", "-1"], "lr"),
    ("--lr inf", ["--lr", "inf"], "lr"),
    ("--batch-size 1", ["--batch-size", "1"], "batch"),
    ("--log-every -1", ["--log-every", "-1"], "log"),
    ("--device mps", ["--device", "mps"], "mps"),
    ("--device cuda:9", ["--device", "cuda:9"], "cuda"),
    ("--device tpu", ["--device", "tpu"], "tpu"),
    ("--train-subset -5", ["--train-subset", "-5"], "subset"),
    ("--eval-every 0", ["--eval-every", "0"], "eval"),
    # the line must also say what is wrong with -1 (it is shorter than the run)
    ("--warmup-epochs -1", ["--warmup-epochs", "-1"], "warm", ("-1", ">= 0", "negative", "at least 0")),
    ("--momentum 2", ["--momentum", "2"], "momentum"),
]


def bad_number(flags: list[str], word: str, why: tuple[str, ...] = ()) -> None:
    runs = S.folder("bad-" + "-".join(flags)) / "runs"
    argv = [*ONE_MODEL, "--epochs", "1", "--runs", runs, *flags]
    result = cli(*argv)
    if result.code == 0:
        made = [f"{p.name} {Run(p).status().get('status')}" for p in run_folders(runs)]
        raise NotSurvived(f"accepted without a word (exit 0): trained {', '.join(made) or 'nothing'}")
    line = refused(result, "train", word)
    if why and not any(w in line for w in why):
        raise NotSurvived(f"the line does not say what is wrong with {' '.join(flags)}: {line}")
    no_new_run(runs, "train")


for _name, _flags, *_words in BAD_NUMBERS:
    trial("F", f"train {_name}: exit 2, one line, no run folder", bad_number, _flags, *_words)


# G. odd data folders ------------------------------------------------------------------


def _in_class(folder: Path) -> Path:
    return folder / "train" / sorted(p.name for p in (folder / "train").iterdir())[0]


def _plant(name: str, data: bytes | None = None, link: str | None = None) -> Callable[[Path, Path], str]:
    def plant(folder: Path, base: Path) -> str:
        path = _in_class(folder) / name
        if link is not None:
            path.symlink_to(path.parent / link)
        else:
            path.write_bytes(data)
        return str(folder)

    return plant


def _one_class(folder: Path, base: Path) -> str:
    for split in ("train", "test"):
        for extra in sorted((folder / split).iterdir())[1:]:
            shutil.rmtree(extra)
    return str(folder)


def _no_test_split(folder: Path, base: Path) -> str:
    shutil.rmtree(folder / "test")
    return str(folder)


def _test_class_train_lacks(folder: Path, base: Path) -> str:
    shutil.copytree(sorted((folder / "test").iterdir())[0], folder / "test" / "zebra")
    return str(folder)


def _a_file(folder: Path, base: Path) -> str:
    (base / "images.txt").write_text("not a folder")
    return str(base / "images.txt")


ODD_FOLDERS = [
    ("a dangling symlink image", _plant("gone.png", link="nothing-here.png"), "gone.png"),
    ("a symlink loop", _plant("loop.png", link="loop.png"), "loop.png"),
    ("an 81-megapixel PNG header", _plant("huge.png", bomb_png(9000, 9000)), "huge.png"),
    ("an undecodable .jpg", _plant("broken.jpg", b"not an image at all"), "broken.jpg"),
    ("a zero-byte .png", _plant("empty.png", b""), "empty.png"),
    ("only one class", _one_class, "odd-data"),
    ("no test split", _no_test_split, "odd-data"),
    ("test classes train lacks", _test_class_train_lacks, "zebra"),
    ("the folder is a file", _a_file, "images.txt"),
    ("a nonexistent path", lambda folder, base: str(base / "no-such-folder"), "no-such-folder"),
    ("a ~ path to nowhere", lambda folder, base: "~/no-such-resexplorer-data", "no-such-resexplorer-data"),
]


def odd_data(plant: Callable[[Path, Path], str], name: str) -> None:
    S.ready()
    base = S.folder("odd-data")
    folder = Path(shutil.copytree(S.images, base / "odd-data"))
    source = plant(folder, base)
    runs = base / "runs"
    argv = ["train", "--model", "resnet-8", "--data", source, "--device", "cpu", "--epochs", "1"]
    result = cli(*argv, "--batch-size", "8", "--runs", runs, "--cache", base / "cache", env=child_env(HOME=base))
    refused(result, "train", name)
    no_new_run(runs, "train")


for _name, _plant_it, _word in ODD_FOLDERS:
    trial("G", f"--data with {_name}: exit 2, a line naming it", odd_data, _plant_it, _word)


# H. disk full ---------------------------------------------------------------------------


class FullDisk:
    """A folder on a disk that can be filled: a 3 MB tmpfs when this process
    may mount one; else (fallback) a plain folder, and while it is 'full' the
    command line runs as a child of this script in which every atomic write
    to that folder fails with ENOSPC, as a full disk's would."""

    SIZE = "3M"

    def __init__(self, base: Path):
        self.path = base / "disk"
        self.path.mkdir()
        self.mounted = False
        self.full_after: str | None = None  # fallback: full (once a file of this name is there; "" at once)
        if S.mount:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs", str(self.path)],
                capture_output=True,
            )
            self.mounted = done.returncode == 0

    def fill(self, leave: int = 200_000, after: str = "") -> None:
        """Leave `leave` bytes free (fallback: fail every write, or every
        write once a file named `after` is on the disk)."""
        self.full_after = after
        if self.mounted:
            free = shutil.disk_usage(self.path).free
            with open(self.path / "filler", "ab") as handle:
                handle.write(b"\0" * max(0, free - leave))

    def free(self) -> None:
        self.full_after = None
        (self.path / "filler").unlink(missing_ok=True)

    def cli(self, *args) -> Outcome:
        if self.mounted or self.full_after is None:
            return cli(*args)
        script = [sys.executable, str(Path(__file__).resolve()), CHILD_ON_FULL_DISK, str(self.path), self.full_after]
        process = subprocess.Popen(
            [*script, *map(str, args)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        return finish(process)

    def close(self) -> None:
        if self.mounted:
            for options in ([], ["-l"]):
                if subprocess.run(["umount", *options, str(self.path)], capture_output=True).returncode == 0:
                    break
            self.mounted = False


CHILD_ON_FULL_DISK = "--child-on-full-disk"


def child_on_full_disk(disk: str, after: str, *args: str) -> int:
    """The fallback's command line: `python -m resexplorer ARGS` on a 'disk'
    where fsync fails with ENOSPC, and its free space reads 0, once it is full."""
    folder = Path(disk).resolve()
    real_fsync, real_free = os.fsync, storage.free_bytes

    def full() -> bool:
        return not after or any(folder.rglob(after))

    def on_disk(fd: int) -> bool:
        stat = os.fstat(fd)
        return any(p.stat().st_ino == stat.st_ino and p.stat().st_dev == stat.st_dev for p in folder.rglob("*"))

    def fsync(fd: int) -> None:
        if full() and on_disk(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    def free_bytes(where: Path) -> int:
        return 0 if full() and Path(where).resolve().is_relative_to(folder) else real_free(where)

    os.fsync, storage.free_bytes = fsync, free_bytes  # an import asks the same function
    return cli_main(list(args))


@contextlib.contextmanager
def full_disk(name: str) -> Iterator[FullDisk]:
    S.ready()
    disk = FullDisk(S.folder(name))
    note(f"on a {FullDisk.SIZE} tmpfs" if disk.mounted else "on a folder whose writes fail with ENOSPC (no tmpfs)")
    try:
        yield disk
    finally:
        disk.close()


def _said_no_space(result: Outcome, what: str, *names: str) -> None:
    line = refused(result, what, *names)
    if "no space left" not in line.lower():
        raise NotSurvived(f"{what}: the message does not say the disk is full: {line[:300]}")


def train_into_a_full_folder() -> None:
    with full_disk("train-full") as disk:
        runs = disk.path / "runs"
        disk.fill()
        result = disk.cli(*RACE, "--runs", runs)
        _said_no_space(result, "train", str(runs), "runs")
        disk.free()
        listing = succeeded(disk.cli("runs", "--runs", runs), "runs afterwards")
        made = [p.name for p in run_folders(runs) if (p / "config.json").exists()]  # a run, not an empty folder
        unlisted = [name for name in made if name not in listing.out]
        if unlisted:
            raise NotSurvived(f"runs afterwards does not list {unlisted}: {listing.out.strip()[:200]}")


def _pages(path: Path) -> int:
    return -(-path.stat().st_size // 4096)


def disk_fills_after_the_first_checkpoint() -> None:
    """Room for a run's config, status and first checkpoint, not a byte more:
    the first metrics line finds no space (measured on the uninterrupted run)."""
    with full_disk("fills-after-checkpoint") as disk:
        runs, made = disk.path / "runs", Run(S.good["resnet-8"])
        pages = _pages(made.config_path) + _pages(made.status_path) + _pages(made.checkpoint_path(0))
        disk.fill(leave=4096 * pages, after="epoch-0000.pt")
        result = disk.cli(*ONE_MODEL, "--epochs", str(EPOCHS), "--runs", runs)
        _said_no_space(result, "train", str(runs), "runs")
        disk.free()
        folders = [p for p in run_folders(runs) if (p / "config.json").exists()]
        if len(folders) != 1:
            raise NotSurvived(f"the run is not there: {[p.name for p in run_folders(runs)]}")
        note(f"left epochs {epochs_of(folders[0])}, {Run(folders[0]).status().get('status')}")
        succeeded(disk.cli("resume", folders[0], "--data", "synthetic"), "resume once space is freed")
        finished_like_the_uninterrupted_race(folders[0], [], "after resume")


def resume_on_a_full_disk() -> None:
    with full_disk("resume-full") as disk:
        path = copy_run(S.cut["resnet-8"], disk.path / "runs")
        before, last = Run(path).metrics("epoch"), Run(path).checkpoint_path("last")
        disk.fill()
        result = disk.cli("resume", path, "--data", "synthetic")
        _said_no_space(result, "resume", path.name, str(path))
        disk.free()
        if Run(path).metrics("epoch") != before:
            raise NotSurvived(f"the completed epochs changed: now {epochs_of(path)}")
        ckpt = product(lambda: load_checkpoint(last), "the previous checkpoint")
        if ckpt["epoch"] != len(before):
            raise NotSurvived(f"the previous checkpoint is of epoch {ckpt['epoch']}")
        leftovers = [p.name for p in path.rglob(f"*{storage.TEMP_SUFFIX}")]
        if leftovers:
            raise NotSurvived(f"half-written files left: {leftovers}")


def resume_after_space_is_freed() -> None:
    with full_disk("resume-freed") as disk:
        path = copy_run(S.cut["resnet-8"], disk.path / "runs")
        before = Run(path).metrics("epoch")
        disk.fill()
        no_traceback(disk.cli("resume", path, "--data", "synthetic"), "resume on the full disk")
        disk.free()
        succeeded(disk.cli("resume", path, "--data", "synthetic"), "resume once space is freed")
        finished_like_the_uninterrupted_race(path, before, "after resume")


def data_cache_on_a_full_disk() -> None:
    with full_disk("cache-full") as disk:
        cache, runs = disk.path / "cache", S.folder("cache-full-runs") / "runs"
        cache.mkdir()
        disk.fill(leave=0)  # not a byte: even a small data set's cache cannot be written
        argv = ["train", "--model", "resnet-8", "--data", S.images, "--device", "cpu", "--epochs", "1"]
        succeeded(disk.cli(*argv, "--batch-size", "8", "--runs", runs, "--cache", cache), "train")
        if [epochs_of(p) for p in run_folders(runs)] != [[1]]:
            raise NotSurvived(f"the run did not train: {[epochs_of(p) for p in run_folders(runs)]}")
        written = [p.name for p in cache.rglob("*") if p.is_file()]
        if written:
            raise NotSurvived(f"the full cache holds {written}")


trial("H", "train into a full folder: 'no space left', no traceback", train_into_a_full_folder)
trial("H", "full right after the first checkpoint: said; resumes once freed", disk_fills_after_the_first_checkpoint)
trial("H", "resume on a full disk: said, previous epoch kept", resume_on_a_full_disk)
trial("H", "resume once space is freed: every epoch there", resume_after_space_is_freed)
trial("H", "a data cache that cannot be written only costs speed", data_cache_on_a_full_disk)


# I. third round: foreign folders, hostile archives, file-system trouble, signals ----------

# Other programs' folders in a runs folder (the same kinds the unit tests use).


def _foreign_runs_folder(name: str) -> tuple[Path, Path, dict[str, Path]]:
    """A runs folder with a good run and one folder of another program's per FOREIGN kind."""
    S.ready()
    root = S.folder(name) / "runs"
    good = copy_run(S.good["resnet-8"], root)
    folders = {}
    for number, (kind, config) in enumerate(FOREIGN.items()):
        folder = root / f"other-program-{number}"
        folder.mkdir()
        (folder / "config.json").write_bytes(config)
        (folder / OWNERS_FILE).write_text("years of work")
        folders[kind] = folder
    return root, good, folders


def foreign_folder(kind: str) -> None:
    root, good, folders = _foreign_runs_folder(f"foreign-{kind}")
    folder = folders[kind]
    files = file_bytes(folder)
    found = RunStore(root).scan()
    if folder.name in [d.run_id for d in found.damaged]:
        raise NotSurvived(f"scan lists {folder.name} as a damaged run (so the app would offer to delete it)")
    if folder.name not in [n.run_id for n in found.not_runs]:
        raise NotSurvived(f"scan does not name {folder.name} in not_runs: {[n.run_id for n in found.not_runs]}")
    if [run.run_id for run in found.runs] != [good.name]:
        raise NotSurvived(f"scan lists the runs {[run.run_id for run in found.runs]}, expected {good.name}")
    try:
        RunStore(root).delete(folder.name)
        raise NotSurvived(f"the store deleted {folder.name}")
    except RunError as err:
        note(f"delete({folder.name!r}): {err}")
        if "not a run" not in str(err):
            raise NotSurvived(f"the store's refusal does not say it is not a run: {str(err)[:300]}") from err
    _intact(folder, files, "the other program's folder (after the store's delete)")
    line = refused(cli("delete", folder), "delete", folder.name)
    if "not a run" not in line:
        raise NotSurvived(f"delete's line does not say it is not a run: {line[:300]}")
    _intact(folder, files, "the other program's folder (after the delete command)")


def damaged_run_of_ours() -> None:
    root, good, folders = _foreign_runs_folder("foreign-and-damaged")
    damaged = copy_run(S.cut["resnet-8"], root, "20260101-000000-resnet-8-damaged")
    if not (damaged / run_store.RUN_MARKER).is_file():
        raise NotSurvived(f"a run the store made carries no {run_store.RUN_MARKER}")
    _truncate_half(damaged / "config.json")
    kept = {path: file_bytes(path) for path in [good, *folders.values()]}
    found = RunStore(root).scan()
    if [d.run_id for d in found.damaged] != [damaged.name]:
        raise NotSurvived(f"scan's damaged runs are {[d.run_id for d in found.damaged]}, expected {damaged.name}")
    note(f"damaged: {found.damaged[0].problem}")
    said = succeeded(cli("delete", damaged), "delete the damaged run")
    note(f"delete: {said.out.strip()[:200]}")
    if damaged.exists():
        raise NotSurvived("the damaged run is still there")
    for path, files in kept.items():
        _intact(path, files, path.name)


def _crafted_archive(path: Path, members: dict[str, bytes], runs: list[str]) -> Path:
    """An archive of these members, listed in a correct manifest (true sizes
    and checksums), compressed as hard as deflate can."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        entries = {name: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for name, d in members.items()}
        manifest = {"format": transfer.ARCHIVE_FORMAT, "version": transfer.ARCHIVE_VERSION, "runs": runs}
        archive.writestr(transfer.MANIFEST, json.dumps({**manifest, "files": entries}))
    return path


def _nothing_under(runs: Path, what: str) -> None:
    if runs.exists() and any(runs.iterdir()):
        raise NotSurvived(f"{what} wrote {', '.join(sorted(p.name for p in runs.iterdir()))[:200]} under {runs.name}")


def zip_bomb() -> None:
    base = S.folder("zip-bomb")
    run_id = "20260101-000000-resnet-8-bomb"
    zeros = bytes(64 << 20)
    archive = _crafted_archive(base / "bomb.zip", {f"{run_id}/checkpoints/epoch-0001.pt": zeros}, [run_id])
    note(f"64 MiB of zeros in a {archive.stat().st_size / 2**10:.0f} KiB archive")
    (base / "runs").mkdir()
    refused(cli("import", archive, "--runs", base / "runs"), "import", archive.name)
    _nothing_under(base / "runs", "the refused import")


def archive_over_the_free_disk() -> None:
    with full_disk("import-full") as disk:
        run_id = "20260101-000000-resnet-8-large"
        archive = disk.path.parent / "large.zip"  # beside the small disk, not on it
        _crafted_archive(archive, {f"{run_id}/checkpoints/epoch-0001.pt": os.urandom(1 << 20)}, [run_id])
        runs = disk.path / "runs"
        disk.fill()
        line = refused(disk.cli("import", archive, "--runs", runs), "import", archive.name, str(runs))
        disk.free()
        if runs.exists():  # the runs folder is made only once the archive is known to fit
            raise NotSurvived(f"the import wrote to the disk before it found no room ({line[:200]})")
        others = sorted(p.name for p in disk.path.iterdir() if p.name != "filler")
        if others:
            raise NotSurvived(f"the refused import left {others} on the disk")


def import_of_many_runs() -> None:
    """As many tiny runs as an import takes (each only a config): quickly."""
    S.ready()
    base = S.folder("many-runs")
    config = json.loads(S.good["resnet-8"].joinpath("config.json").read_bytes())
    ids = [f"20260101-000000-resnet-8-{i:06x}" for i in range(transfer.MAX_RUNS)]
    members = {f"{run_id}/config.json": json.dumps({**config, "run_id": run_id}).encode() for run_id in ids}
    archive = _crafted_archive(base / "many.zip", members, ids)
    began = time.monotonic()
    result = succeeded(cli("import", archive, "--runs", base / "runs"), "import")
    seconds = time.monotonic() - began
    imported = [line for line in result.out.splitlines() if line.startswith("imported ")]
    note(f"{len(ids)} runs: {len(imported)} imported, {len(ids) - len(imported)} skipped, in {seconds:.1f} s")
    if seconds > 30:
        raise NotSurvived(f"an import of {len(ids)} tiny runs took {seconds:.0f} s")
    if len(imported) + sum(line.startswith("skipped: ") for line in result.out.splitlines()) != len(ids):
        raise NotSurvived(f"the import did not account for every run: {result.out.strip()[-200:]}")


def import_over_max_runs() -> None:
    base = S.folder("too-many-runs")
    ids = [f"20260101-000000-resnet-8-{i:06x}" for i in range(transfer.MAX_RUNS + 1)]
    archive = _crafted_archive(base / "too-many.zip", {f"{run_id}/config.json": b"{}" for run_id in ids}, ids)
    line = refused(cli("import", archive, "--runs", base / "runs"), "import", archive.name)
    if f"{len(ids):,}" not in line and str(len(ids)) not in line:
        raise NotSurvived(f"the line does not say how many runs it holds: {line[:300]}")
    _nothing_under(base / "runs", "the refused import")


NOT_IDS = {"300 characters": "x" * 300, "a NUL byte": "run\x00id", "a newline": "run\nid", "a lone space": " "}


def not_a_run_id(name: str) -> None:
    base = S.folder(f"not-an-id-{name}")
    run_id = NOT_IDS[name]
    archive = _crafted_archive(base / "odd.zip", {}, [run_id])
    refused(cli("import", archive, "--runs", base / "runs"), "import", "not a run id")
    _nothing_under(base / "runs", "the refused import")


MISSHAPEN = {
    "a JSON string": lambda record: "inside",
    "a list": lambda record: [record],
    "an object without response_std": lambda record: {k: v for k, v in record.items() if k != "response_std"},
}


def misshapen_analysis(name: str) -> None:
    S.ready()
    base = S.folder(f"analysis-{name}")
    run = Run(copy_run(S.good["resnet-8"], base / "runs"))
    epoch = run.committed_epoch()
    pool = analysis.ImagePool.from_dataset(make_synthetic())
    record = product(lambda: analysis.compute(run, epoch, "inside", pool, device="cpu"), "compute")
    made = sorted((run.path / analysis.ANALYSIS_DIR / f"epoch-{epoch:04d}").glob("inside-*.json"))
    if len(made) != 1 or analysis.cached(run, epoch, "inside") is None:
        raise NotSurvived(f"the computed analysis is not cached as expected: {[p.name for p in made]}")
    made[0].write_text(json.dumps(MISSHAPEN[name](record)))
    shown = analysis.cached(run, epoch, "inside")
    if shown is not None:
        raise NotSurvived(f"a cached analysis that is {name} is read as one: {str(shown)[:120]}")
    archive = base / "run.zip"
    product(lambda: transfer.export_runs([run], archive), "export")
    target = base / "imported"
    result = succeeded(cli("import", archive, "--runs", target), "import")
    note(f"import: {' | '.join(result.out.strip().splitlines())[:400]}")
    if f"imported {run.run_id}" not in result.out.splitlines():
        raise NotSurvived(f"the run was not imported: {result.out.strip()[:300]}")
    skipped = [line for line in result.out.splitlines() if line.startswith("skipped: ")]
    if not any("left out" in line and made[0].name in line for line in skipped):
        raise NotSurvived(f"the import does not say the bad analysis was left out: {result.out.strip()[:300]}")
    landed = Run(target / run.run_id)
    if (landed.path / made[0].relative_to(run.path)).exists():
        raise NotSurvived("the misshapen analysis was imported")
    if product(lambda: landed.metrics("epoch"), "metrics") != run.metrics("epoch"):
        raise NotSurvived("the imported run's epochs differ")
    product(lambda: load_run_checkpoint(landed), "the imported run's checkpoint")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """The folder read-only, as the OS enforces it: a read-only bind mount
    (root, whom permission bits do not stop); else its bits taken away."""
    mounted = False
    if S.mount and hasattr(os, "geteuid") and os.geteuid() == 0:
        if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0:
            mounted = True
            if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
                subprocess.run(["umount", str(folder)], capture_output=True)
                mounted = False
    folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    if not mounted:
        for path in folders:
            path.chmod(0o555)
    note("on a read-only bind mount" if mounted else "in a folder without write permission")
    try:
        try:
            (folder / "probe").write_text("x")
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            raise NotSurvived(f"set-up: {folder.name} could not be made read-only here")
        yield folder
    finally:
        if mounted:
            for options in ([], ["-l"]):
                if subprocess.run(["umount", *options, str(folder)], capture_output=True).returncode == 0:
                    break
        else:
            for path in folders:
                path.chmod(0o755)


def _runs_file(base: Path) -> Path:
    path = base / "runs-is-a-file"
    path.write_text("not a folder")
    return path


FOLDER_TROUBLE = {
    "is a file": _runs_file,
    "is read-only": lambda base: base / "runs",
    "cannot be made (its parent is a file)": lambda base: _runs_file(base) / "runs",
}


def folder_trouble(name: str) -> None:
    """train, import and resume with a runs folder that cannot be written: one line naming it."""
    S.ready()
    base = S.folder(f"runs-folder-{name}")
    archive = base / "run.zip"
    transfer.export_runs([Run(S.good["resnet-8"])], archive)
    runs = FOLDER_TROUBLE[name](base)
    run_dir = runs / S.cut["resnet-8"].name
    if name == "is read-only":
        copy_run(S.cut["resnet-8"], runs)
    kept = file_bytes(runs) if runs.is_dir() else None
    commands = {
        "train": [*ONE_MODEL, "--epochs", "1", "--runs", runs],
        "import": ["import", archive, "--runs", runs],
        "resume": ["resume", run_dir, "--data", "synthetic"],
    }
    with read_only(runs) if name == "is read-only" else contextlib.nullcontext():
        for command, argv in commands.items():
            refused(cli(*argv), command, str(runs))
        succeeded(cli("runs", "--runs", runs), "runs")
    if kept is not None and file_bytes(runs) != kept:
        raise NotSurvived("the read-only runs folder's files changed")
    if name == "is a file" and runs.read_text() != "not a folder":
        raise NotSurvived("the file standing for the runs folder changed")


def cache_is_a_file() -> None:
    """The app's Start when RESEXPLORER_CACHE (where the machine lock lives) is a file."""
    base = S.folder("cache-a-file")
    cache, runs = base / "cache-is-a-file", base / "runs"
    cache.write_text("not a folder")
    real, os.environ["RESEXPLORER_CACHE"] = os.environ["RESEXPLORER_CACHE"], str(cache)
    job = None
    try:
        job = JobManager(runs).start_training(["resnet-8"], "synthetic", TrainConfig(epochs=1))
    except ResExplorerError as err:
        note(f"Start: {type(err).__name__}: {err}")
        if not isinstance(err, errors.FolderError) or str(cache) not in str(err):
            raise NotSurvived(f"{type(err).__name__} that does not name the cache: {str(err)[:300]}") from err
    except Exception as err:
        raise NotSurvived(f"Start raised {type(err).__name__}: {str(err)[:300]}") from err
    finally:
        os.environ["RESEXPLORER_CACHE"] = real
    if job is not None:
        _stop_job(job)
        raise NotSurvived(f"a job started with the cache a file; it ended {job.status()['state']}")
    if JobManager(runs).jobs():
        raise NotSurvived(f"the refused Start left job folders {[j.job_id for j in JobManager(runs).jobs()]}")


def signal_stops_training(signame: str) -> None:
    S.ready()
    runs = S.folder(f"signal-{signame}") / "runs"
    process = start(*ONE_MODEL, "--epochs", "8", "--train-subset", "512", "--runs", runs)
    deadline = time.monotonic() + TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        if run_folders(runs) and epochs_of(run_folders(runs)[0]):
            break
        time.sleep(0.02)
    if process.poll() is not None:
        raise NotSurvived(f"train ended before its first epoch was seen: {last_line(finish(process).err)}")
    process.send_signal(getattr(signal, signame))
    result = finish(process)
    no_traceback(result, "train")
    note(f"exit {result.code} on {signame}: {last_line(result.err)}")
    if result.code != 130:
        raise NotSurvived(f"exit {result.code} on {signame}, expected 130: {last_line(result.err)}")
    [path] = run_folders(runs)
    status, before = Run(path).status(), Run(path).metrics("epoch")
    note(f"{path.name}: epochs {epochs_of(path)}, {status.get('status')}: {status.get('message')}")
    if status.get("status") != "cancelled" or signame not in status.get("message", ""):
        raise NotSurvived(f"the run reads {status.get('status')} ({status.get('message', '')[:200]})")
    epochs = [r["epoch"] for r in before]
    if not epochs or epochs != list(range(1, len(epochs) + 1)) or len(epochs) >= 8:
        raise NotSurvived(f"the run has epoch records {epochs}")
    ckpt = product(lambda: load_run_checkpoint(Run(path)), "the last checkpoint")
    if ckpt["epoch"] != epochs[-1]:
        raise NotSurvived(f"the last checkpoint is of epoch {ckpt['epoch']}, the metrics reach {epochs[-1]}")
    succeeded(cli("resume", path, "--data", "synthetic"), "resume")
    records = Run(path).metrics("epoch")
    if [r["epoch"] for r in records] != list(range(1, 9)) or Run(path).status().get("status") != "done":
        raise NotSurvived(f"after resume: epochs {epochs_of(path)}, {Run(path).status().get('status')}")
    if records[: len(before)] != before:
        raise NotSurvived("resume changed the epochs committed before the signal")


def zombie_worker() -> None:
    """A worker that exited but was never waited for (as where no init reaps orphans)."""
    S.ready()
    root = S.folder("zombie") / "runs"
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for until the end
    try:
        started = psutil.Process(child.pid).create_time()
        if not _wait(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 30):
            raise NotSurvived("set-up: the child never became a zombie")
        if processes.process_of(child.pid, started) is not None:
            raise NotSurvived(f"process_of takes the zombie {child.pid} for a live process")
        path = copy_run(S.good["resnet-8"], root)
        record = {"status": "running", "message": "", "pid": child.pid, "started": started}
        (path / "status.json").write_text(json.dumps({**record, "host": socket.gethostname()}))
        if Run(path).status().get("status") != "interrupted":
            raise NotSurvived(f"a run whose process is a zombie reads {Run(path).status().get('status')}")
        job_dir = root / JOBS_FOLDER / "20260101-000000-abcdef"
        job_dir.mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps({"job_id": job_dir.name, "pid": child.pid, "started": started}))
        (job_dir / "progress.json").write_text(json.dumps({"state": "running", "runs": {}}))
        state = Job(job_dir).status()["state"]
        if state != "failed":
            raise NotSurvived(f"a job whose worker is a zombie reads {state}")
        if JobManager(root).active() is not None:
            raise NotSurvived("the zombie's job still holds the runs folder's job slot")
    finally:
        child.wait()


def run_made_far_from_utc() -> None:
    S.ready()
    runs = S.folder("kiritimati") / "runs"
    env = child_env(TZ="Pacific/Kiritimati")
    zone = subprocess.run(
        [sys.executable, "-c", "import time; print(time.strftime('%z'))"], env=env, capture_output=True, text=True
    ).stdout.strip()
    if zone != "+1400":
        raise NotSurvived(f"set-up: this machine does not know Pacific/Kiritimati (its offset reads {zone!r})")
    succeeded(cli(*ONE_MODEL, "--epochs", "1", "--runs", runs, env=env), "train")
    [path] = run_folders(runs)
    created = Run(path).config()["created"]
    note(f"{path.name}, created {created}")
    when = datetime.fromisoformat(created)
    if when.utcoffset() is None:
        raise NotSurvived(f"created {created!r} does not say its time zone")
    try:
        stamp = datetime.strptime(path.name[:15], "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise NotSurvived(f"the run id {path.name} does not start with a time stamp") from None
    if not 0 <= (when - stamp).total_seconds() <= 2:  # the id is stamped a moment before `created` is written
        raise NotSurvived(f"the run id's stamp {path.name[:15]} is not the UTC time of created {created}")


def two_imports_at_once() -> None:
    """The same archive imported twice at once, ten times over."""
    S.ready()
    base = S.folder("two-imports")
    for number in range(4):
        copy_run(S.good["resnet-8"], base / "source", f"20260101-00000{number}-resnet-8-race{number}")
    copy_run(S.good["plain-8"], base / "source")
    sources = {p.name: Run(p) for p in run_folders(base / "source")}
    archive = base / "runs.zip"
    transfer.export_runs(list(sources.values()), archive)
    for repetition in range(10):
        runs = base / f"runs-{repetition}"
        results = [finish(p) for p in [start("import", archive, "--runs", runs) for _ in range(2)]]
        imported = {run_id: 0 for run_id in sources}
        for result in results:
            succeeded(result, f"import (repetition {repetition + 1})")
            lines = result.out.splitlines()
            for run_id in sources:
                already = [line for line in lines if line.startswith(f"skipped: {run_id} ") and "already" in line]
                if f"imported {run_id}" in lines:
                    imported[run_id] += 1
                elif not any("not overwritten" in line for line in already):
                    raise NotSurvived(f"repetition {repetition + 1}: about {run_id}: {' | '.join(lines)[:300]}")
        if set(imported.values()) != {1}:
            raise NotSurvived(f"repetition {repetition + 1}: imported {imported} times")
        there = sorted(p.name for p in runs.iterdir())
        if there != sorted(sources):
            raise NotSurvived(f"repetition {repetition + 1}: the runs folder holds {there}")
        for run_id, source in sources.items():
            landed = Run(runs / run_id)
            if product(partial(landed.metrics, "epoch"), "metrics") != source.metrics("epoch"):
                raise NotSurvived(f"repetition {repetition + 1}: {run_id}'s epochs differ")
            product(partial(load_run_checkpoint, landed), f"{run_id}'s checkpoint")
    note(f"10 x 2 imports of {len(sources)} runs")


# The app's uploaders (tests/helpers.app, as the app tests drive them): what each takes, in MB.
UPLOADERS = """
import json
from helpers import app
limits = {"import_zip": app("pages/runs.py").file_uploader(key="import_zip").proto.max_upload_size_mb}
for page, source, key in [("pages/tta.py", "tta_source", "tta_upload"),
                          ("pages/attributions.py", "attr_source", "attr_upload")]:
    at = app(page)
    at.radio(key=source).set_value("Upload").run()
    limits[key] = at.file_uploader(key=key).proto.max_upload_size_mb
print(json.dumps(limits))
"""


def upload_limits() -> None:
    """Streamlit refuses an upload over its limit before the app sees it: an
    image uploader must take what the package takes (MAX_UPLOAD_BYTES), or
    the user gets Streamlit's words, or uploads megabytes only to be refused;
    and the server's cap (server.maxUploadSize) is the largest uploader's."""
    from resexplorer.data.images import MAX_UPLOAD_BYTES

    path = ROOT / ".streamlit" / "config.toml"
    try:  # one key read by its line: tomllib is Python 3.11's
        found = re.search(r"^maxUploadSize\s*=\s*(\d+)", path.read_text(), re.M)
    except OSError as err:
        raise NotSurvived(f"{path.name} cannot be read: {err}") from err
    cap = int(found.group(1)) if found else None
    base = S.folder("upload-limits")
    env = child_env(PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), RESEXPLORER_RUNS=base / "runs")
    done = subprocess.run(
        [sys.executable, "-c", UPLOADERS],
        cwd=ROOT,
        env={**env, "RESEXPLORER_DATA": "synthetic"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    try:
        limits = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise NotSurvived(f"set-up: the pages could not be drawn: {last_line(done.stderr)}") from None
    image_mb = MAX_UPLOAD_BYTES / 2**20
    note(f"server.maxUploadSize = {cap!r}; uploaders {limits}; MAX_UPLOAD_BYTES = {image_mb:g} MB")
    if cap is None:
        raise NotSurvived(f"{path.name} sets no server.maxUploadSize (Streamlit's default is 200 MB)")
    wrong = {key: mb for key, mb in limits.items() if key != "import_zip" and mb != image_mb}
    if wrong:
        raise NotSurvived(f"image uploaders take {wrong} MB, the package takes {image_mb:g} MB")
    zip_mb = getattr(transfer, "UPLOAD_MB", None)
    if limits["import_zip"] != zip_mb:
        raise NotSurvived(f"the Runs page's zip uploader takes {limits['import_zip']} MB, the package {zip_mb} MB")
    if cap != max(limits.values()):
        raise NotSurvived(f"server.maxUploadSize is {cap!r} MB, the largest uploader takes {max(limits.values())} MB")


for _kind in FOREIGN:
    trial("I", f"a foreign folder whose config.json is {_kind}: not a run, not deleted", foreign_folder, _kind)
trial("I", "a damaged run of ours beside foreign folders: listed damaged, deleted", damaged_run_of_ours)
trial("I", "import a zip bomb (64 MiB of zeros): refused, nothing written", zip_bomb)
trial("I", "import an archive bigger than the free disk: refused before writing", archive_over_the_free_disk)
trial("I", f"import {transfer.MAX_RUNS:,} tiny runs: done in under 30 s", import_of_many_runs, serial=True)
trial("I", f"import {transfer.MAX_RUNS + 1:,} runs: refused in one line", import_over_max_runs)
for _name in NOT_IDS:
    trial("I", f"import a run id of {_name}: 'not a run id', nothing written", not_a_run_id, _name)
for _name in MISSHAPEN:
    trial("I", f"a cached analysis that is {_name}: recomputed, left out of an import", misshapen_analysis, _name)
for _name in FOLDER_TROUBLE:
    trial("I", f"the runs folder {_name}: train, import, resume say so in a line", folder_trouble, _name)
trial("I", "RESEXPLORER_CACHE a file: the app's Start refused naming it", cache_is_a_file, serial=True)
for _signame in ("SIGTERM", "SIGHUP"):
    trial("I", f"{_signame} to train after epoch 1: exit 130, cancelled, resumes", signal_stops_training, _signame)
trial("I", "a worker that is a zombie: its run interrupted, its job failed", zombie_worker)
trial("I", "a run made under TZ=Pacific/Kiritimati: its id stamped in UTC", run_made_far_from_utc)
trial("I", "two imports of one archive at once, ten times: one copy each", two_imports_at_once)
trial("I", "uploads: each uploader takes what the package takes, the server cap the largest", upload_limits)


# --- running them ---------------------------------------------------------------------


def attempt(t: Trial) -> tuple[Trial, bool, str, list[str]]:
    NOTES.said, began = [], time.monotonic()
    try:
        t.run()
        note(f"({time.monotonic() - began:.1f} s)")
        return t, True, "", NOTES.said
    except NotSurvived as err:
        note(f"({time.monotonic() - began:.1f} s)")
        return t, False, " ".join(str(err).split()), NOTES.said
    except Exception as err:  # a trial that raised unexpectedly
        where = traceback.extract_tb(err.__traceback__)[-1]
        place = f"{Path(where.filename).name}:{where.lineno}"
        what = f"unexpected {type(err).__name__}: {' '.join(str(err).split())[:250]} ({place})"
        return t, False, what, NOTES.said


def report(t: Trial, survived: bool, what: str, said: list[str], verbose: bool = False) -> None:
    mark = "[survived]    " if survived else "[NOT SURVIVED]"
    print(f"{mark} {t.category} {CATEGORIES[t.category]:<19} {t.name}{'' if survived else ' -- ' + what}", flush=True)
    for line in said if verbose else []:
        print(f"        said: {line}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(CATEGORIES), help="run only these categories")
    parser.add_argument(
        "--no-mount", action="store_true", help="disk-full trials without a tmpfs: writes that fail with ENOSPC"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder, and say where it is")
    parser.add_argument("--verbose", action="store_true", help="also print what the product said in each trial")
    args = parser.parse_args()
    global S
    started = time.monotonic()
    torch.set_num_threads(1)
    base = Path(tempfile.mkdtemp(prefix="resexplorer-trials-"))
    S = Session(base, mount=not args.no_mount)
    os.environ["RESEXPLORER_CACHE"] = str(S.cache)  # the app jobs' workers and the machine lock: not the user's
    chosen = [t for t in TRIALS if not args.only or t.category in args.only]
    results: list[tuple[Trial, bool, str, list[str]]] = []
    try:
        print(f"{len(chosen)} trials; setting up (an uninterrupted race, a race killed after epoch 2)", flush=True)
        setup()
        if S.setup_error:
            print(f"set-up failed: {S.setup_error}", flush=True)
        with ThreadPoolExecutor(2) as pool:  # two at a time: the machine's cores
            for outcome in pool.map(attempt, [t for t in chosen if not t.serial]):
                report(*outcome, verbose=args.verbose)
                results.append(outcome)
        for t in [t for t in chosen if t.serial]:
            outcome = attempt(t)
            report(*outcome, verbose=args.verbose)
            results.append(outcome)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print()
    for category, title in CATEGORIES.items():
        mine = [survived for t, survived, _, _ in results if t.category == category]
        if mine:
            print(f"{category} {title}: {sum(mine)} of {len(mine)} trials survived")
    print(f"Total: {sum(s for _, s, _, _ in results)} of {len(results)} trials survived")
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__" and sys.argv[1:2] == [CHILD_ON_FULL_DISK]:
    sys.exit(child_on_full_disk(*sys.argv[2:]))
elif __name__ == "__main__":
    try:
        main()
    except BaseException:  # a report whatever happens: what broke it is printed, the status stays 0
        traceback.print_exc()
    sys.exit(0)
