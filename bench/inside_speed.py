"""Speed of the Inside-the-nets analyses, each against a plain forward pass
over the same images in the same process (the baseline it cannot beat).

  responses   Fig. 7 stds + branch ratios, resnet-56, 1,000 images (goal <= 3 s)
  lesion      single-block deletion sweep, resnet-56 (27 blocks), 1,000 images (goal <= 30 s)
  landscape   41-point 1-D slice, resnet-20, 2,000 images (goal <= 30 s)

Speed does not depend on what the weights are, so random weights and random
images serve. Run:  python bench/inside_speed.py [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.nets.models import build_model  # noqa: E402
from resexplorer.nets.probes import inside_stats  # noqa: E402
from resexplorer.science.landscape import slice_1d  # noqa: E402
from resexplorer.science.lesion import single_block_lesion  # noqa: E402
from resexplorer.system import (
    resolve_device,  # noqa: E402
    uses_channels_last,  # noqa: E402
)


def setup(name: str, n: int, device: torch.device):
    torch.manual_seed(0)
    model = build_model(name).eval().to(device)
    images = torch.randn(n, 3, 32, 32, device=device)
    if uses_channels_last(device):  # as analysis.compute prepares them
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    return model, images, torch.randint(0, 10, (n,), device=device)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.inference_mode()
def forward(model, images, batch: int = 128) -> None:  # the analyses' chunk size
    for i in range(0, len(images), batch):
        model(images[i : i + batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    device = resolve_device(parser.parse_args().device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    rows = []

    model, images, labels = setup("resnet-56", 1000, device)
    forward(model, images)  # warm-up
    base = timed(lambda: forward(model, images))
    rows.append(("responses + ratios, resnet-56, 1,000 images", timed(lambda: inside_stats(model, images)), base, 3.0))
    rows.append(
        (
            "single-block lesion, resnet-56, 27 blocks, 1,000 images",
            timed(lambda: single_block_lesion(model, images, labels)),
            base,
            30.0,
        )
    )

    model, images, labels = setup("resnet-20", 2000, device)
    forward(model, images)
    base = timed(lambda: forward(model, images))
    rows.append(
        (
            "41-point 1-D slice, resnet-20, 2,000 images",
            timed(lambda: slice_1d(model, images, labels, points=41)),
            base,
            30.0,
        )
    )

    print(f"{'analysis':58} {'seconds':>8} {'x forward':>10} {'goal s':>7}")
    for what, seconds, baseline, goal in rows:
        print(
            f"{what:58} {seconds:8.2f} {seconds / baseline:10.1f} {goal:7.0f}  {'ok' if seconds <= goal else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
