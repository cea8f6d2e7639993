"""How close is the Train page's "Expected duration" to a real job?

Measures the device's speed as the page does (planning.measure_layer_rate),
estimates a preset's job with planning.estimate_seconds, then runs that job
as the page does (JobManager, a `python -m resexplorer train` subprocess)
and prints the measured wall time against the estimate.

Run:  python bench/duration_estimate.py --data FOLDER  (an image folder
with train/ and test/, such as the CIFAR-10 JPEG copy; default
$RESEXPLORER_DATA).  --epochs N shortens the preset to N epochs.

Goal: measured / estimate within 0.8 to 1.25 with nothing else running.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.sources import count_images  # noqa: E402
from resexplorer.runs.recipe import TrainConfig  # noqa: E402
from resexplorer.services.planning import (  # noqa: E402
    PRESETS,
    default_settings,
    estimate_seconds,
    format_duration,
    measure_layer_rate,
)
from resexplorer.system import resolve_device  # noqa: E402
from resexplorer.training.jobs import JobManager  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("RESEXPLORER_DATA"), help="image folder with train/ and test/")
    parser.add_argument("--preset", default="Quick demo", choices=[name for name, p in PRESETS.items() if p.models])
    parser.add_argument("--epochs", type=int, default=None, help="fewer epochs than the preset's, for a shorter check")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data FOLDER or set RESEXPLORER_DATA")

    device = resolve_device("auto")
    preset = PRESETS[args.preset]
    settings = {**default_settings(device.type), **dict(preset.overrides)}
    if args.epochs:
        settings["epochs"] = args.epochs
    n_train, n_test = count_images(args.data)
    n_train, n_test = min(n_train, settings["train_subset"] or n_train), min(n_test, settings["test_subset"] or n_test)

    started = time.perf_counter()
    rate = measure_layer_rate(device)
    print(
        f"device {device} ({torch.get_num_threads()} threads): {rate:,.0f} image-layers/s, "
        f"measured in {time.perf_counter() - started:.1f} s"
    )
    estimate = estimate_seconds(list(preset.models), settings["epochs"], n_train, n_test, rate)
    print(
        f"{args.preset}: {', '.join(preset.models)}, {settings['epochs']} epochs x {n_train:,} images, "
        f"testing on {n_test:,}"
    )
    print(f"estimate  {estimate:7.1f} s  ({format_duration(estimate)})")

    config = TrainConfig(**settings)
    with tempfile.TemporaryDirectory() as runs:
        manager = JobManager(runs)
        started = time.perf_counter()
        job = manager.start_training(list(preset.models), args.data, config)
        while job.status()["state"] in ("starting", "running"):
            time.sleep(0.5)
        measured = time.perf_counter() - started
        status = job.status()
    if status["state"] != "done":
        sys.exit(f"the job ended {status['state']}: {status.get('message', '')}")
    print(f"measured  {measured:7.1f} s  ({format_duration(measured)})")
    print(f"measured / estimate = {measured / estimate:.2f}   (goal 0.8 to 1.25)")


if __name__ == "__main__":
    main()
