"""Does importing an archive of runs grow linearly with its number of runs?

One tiny run is trained once (resnet-8, one epoch on 64 generated images)
and exported; archives of N copies of it are then written, each copy under
its own valid run id with its own manifest entries (config.json rewritten
to carry that id, and its checksum taken again), and each archive is
imported with transfer.import_runs into a fresh runs folder.

  import   import_runs end to end: directory checks, then per run unpack,
           checksum, config and checkpoints read back, rename into place.
           The ms per run should stay flat as N grows: the ratio against
           the smallest N stays near 1 when import is linear. (The old
           code was quadratic, each run scanning every manifest entry:
           1k/2k/4k runs took 0.5/1.1/3.4 s.)
  checks   the directory checks alone, before a byte is written: opening
           the zip (zipfile reads its central directory) and then
           transfer._manifest and transfer._check_members; best of a few.
  baseline loading one run's checkpoints (torch.load, weights_only) as the
           import does, measured here: the largest single part of a run's import.

Sizes over transfer.MAX_RUNS are refused by import, so they are not taken.
Run:  python bench/import_scaling.py  [--runs 250 500 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.synthetic import make_synthetic  # noqa: E402
from resexplorer.nets.config import ModelConfig  # noqa: E402
from resexplorer.runs import transfer  # noqa: E402
from resexplorer.runs.checkpoints import load_checkpoint  # noqa: E402
from resexplorer.runs.recipe import (
    RunOptions,
    TrainConfig,  # noqa: E402
)
from resexplorer.runs.store import CHECKPOINT_SUFFIXES, RunStore, run_id_problem  # noqa: E402
from resexplorer.training.launch import new_race  # noqa: E402

CHECK_REPEATS = 5


def run_id(i: int) -> str:
    return f"20260101-000000-resnet-8-{i:06x}"


def train_one(folder: Path) -> tuple[str, dict[str, bytes], dict]:
    """One tiny real run, exported: its id, its members (path inside the
    run -> bytes) and its manifest entries (path inside the run -> entry)."""
    data = make_synthetic(n_train=64, n_test=32, num_classes=4, seed=1)
    config = TrainConfig(epochs=1, batch_size=32)
    race, runs = new_race(
        [ModelConfig("resnet", 8, num_classes=4)], data, config, folder / "made", options=RunOptions(device="cpu")
    )
    race.run()
    buffer = io.BytesIO()
    manifest = transfer.export_runs(list(runs.values()), buffer)
    (original,) = manifest["runs"]
    members, entries = {}, {}
    with zipfile.ZipFile(buffer) as archive:
        for name, entry in manifest["files"].items():
            inside = name.split("/", 1)[1]
            members[inside] = archive.read(name)
            entries[inside] = entry
    return original, members, entries


def write_archive(path: Path, n: int, original: str, members: dict[str, bytes], entries: dict) -> None:
    """N copies of the run, as an export writes them (deflated; level 1 only
    to build faster: inflating costs the same)."""
    config = json.loads(members["config.json"])
    manifest: dict = {"format": transfer.ARCHIVE_FORMAT, "version": transfer.ARCHIVE_VERSION, "runs": [], "files": {}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(n):
            rid = run_id(i)
            assert run_id_problem(rid) is None, rid
            manifest["runs"].append(rid)
            for inside, data in members.items():
                entry = entries[inside]
                if inside == "config.json":  # the copy's own id (import does not compare it; a real run's matches)
                    data = json.dumps({**config, "run_id": rid}, indent=1).encode()
                    entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                archive.writestr(f"{rid}/{inside}", data)
                manifest["files"][f"{rid}/{inside}"] = entry
        archive.writestr(transfer.MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    assert original not in manifest["runs"]


def time_checks(path: Path) -> tuple[float, float]:
    """Best seconds of opening the zip, and of _manifest + _check_members on it."""
    opening, checking = [], []
    for _ in range(CHECK_REPEATS):
        started = time.perf_counter()
        with zipfile.ZipFile(path) as archive:
            opened = time.perf_counter()
            manifest = transfer._manifest(archive, path.name)
            transfer._check_members(archive, manifest, path.name)
            checked = time.perf_counter()
        opening.append(opened - started)
        checking.append(checked - opened)
    return min(opening), min(checking)


def time_checkpoint_loads(folder: Path) -> tuple[int, float]:
    """How many checkpoints one run has, and the median seconds to load them all."""
    paths = [p for p in sorted((folder / "checkpoints").glob("*")) if p.name.endswith(CHECKPOINT_SUFFIXES)]
    times = []
    for _ in range(20):
        started = time.perf_counter()
        for p in paths:
            load_checkpoint(p)
        times.append(time.perf_counter() - started)
    return len(paths), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[250, 500, 1000], help="archive sizes, in runs")
    args = parser.parse_args()
    sizes = sorted(set(args.runs))
    if sizes[0] < 1 or sizes[-1] > transfer.MAX_RUNS:
        parser.error(f"sizes run from 1 to transfer.MAX_RUNS ({transfer.MAX_RUNS}), which import takes at most")

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="import-scaling-") as tmp:
        tmp = Path(tmp)
        original, members, entries = train_one(tmp)
        run_bytes = sum(len(data) for data in members.values())
        print(f"one run: {len(members)} files, {run_bytes / 2**10:,.0f} KiB ({', '.join(sorted(members))})")

        # Warm up (lazy imports, first torch.load), then the per-run baseline.
        write_archive(tmp / "warm.zip", 1, original, members, entries)
        warm = transfer.import_runs(tmp / "warm.zip", RunStore(tmp / "warm"))
        assert warm.imported == [run_id(0)] and not warm.skipped, warm
        n_ckpt, load_s = time_checkpoint_loads(tmp / "warm" / run_id(0))

        rows = []
        for n in sizes:
            path = tmp / f"runs-{n}.zip"
            built = time.perf_counter()
            write_archive(path, n, original, members, entries)
            built = time.perf_counter() - built
            open_s, check_s = time_checks(path)
            store = RunStore(tmp / f"runs-{n}")
            started = time.perf_counter()
            report = transfer.import_runs(path, store)
            seconds = time.perf_counter() - started
            if len(report.imported) != n or report.skipped:
                sys.exit(f"{n} runs: imported {len(report.imported)}, skipped: {report.skipped[:3]}")
            rows.append((n, seconds, open_s, check_s, built, path.stat().st_size))
            shutil.rmtree(store.root)
            path.unlink()

    base_n, base_s, _, base_check, _, _ = rows[0]
    print()
    print(f"baseline: loading one run's {n_ckpt} checkpoints (torch.load, weights_only) takes {load_s * 1e3:.1f} ms")
    print()
    print("                    import_runs                  |  directory checks (best of 5)")
    print("  runs  archive MB      s  ms/run  ratio  ckpt %  |  open zip ms  checks ms  us/run  ratio")
    for n, seconds, open_s, check_s, _built, size in rows:
        per_run, per_check = seconds / n, check_s / n
        ratio, check_ratio = per_run / (base_s / base_n), per_check / (base_check / base_n)
        print(
            f"{n:6d} {size / 2**20:10.0f} {seconds:6.2f} {per_run * 1e3:7.2f} {ratio:6.2f}"
            f" {100 * load_s / per_run:6.0f}%  | {open_s * 1e3:12.1f} {check_s * 1e3:10.1f}"
            f" {per_check * 1e6:7.1f} {check_ratio:6.2f}"
        )
    share = load_s / (rows[-1][1] / rows[-1][0])
    how = "dominates each run's import" if share >= 0.5 else "is the largest single part of each run's import"
    print()
    print(f"ratio: ms per run against the smallest archive ({base_n} runs); near 1 means linear.")
    print("ckpt %: the share of a run's import that loading its checkpoints takes (the baseline above).")
    print(
        f"Checkpoint loading {how}; the rest is unpacking (inflate, SHA-256, write), the config read back\n"
        "and the run's marker (written with an fsync). The directory checks are a small part of the total."
    )
    built = sum(row[4] for row in rows)
    print(f"(archives built in {built:.0f} s, not counted; whole bench {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
