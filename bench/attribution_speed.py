"""Speed of the attribution page's work for one 32x32 image, against one
forward + backward pass of that image in the same process.

  core    Integrated Gradients (50 steps) + Saliency + Grad-CAM, resnet-56 (goal <= 0.5 s)
  grid    the page's default grid: plain-56 and resnet-56 x IG, Saliency,
          SmoothGrad, Grad-CAM, each with its deletion curve (goal <= 3 s)

Random weights serve: speed does not depend on them. Each figure is the
median of 5 runs after one warm-up. Run:  python bench/attribution_speed.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.sources import Normalizer  # noqa: E402
from resexplorer.nets.models import build_model  # noqa: E402
from resexplorer.science.attribution import DEFAULT_METHODS, attribute, explain  # noqa: E402
from resexplorer.science.inference import LoadedModel  # noqa: E402
from resexplorer.system import uses_channels_last  # noqa: E402


def loaded(name: str) -> LoadedModel:
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = build_model(name).eval()
    if uses_channels_last(device):  # as inference.load_run_model prepares it
        model = model.to(memory_format=torch.channels_last)
    return LoadedModel(
        name,
        model,
        Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), device, uses_channels_last(device)),
        [str(i) for i in range(10)],
        device,
        0,
    )


def median_seconds(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"torch threads: {torch.get_num_threads()}")
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    resnet, plain = loaded("resnet-56"), loaded("plain-56")
    batch = resnet.inputs(torch.from_numpy(image)[None])

    def forward_backward():
        x = batch.clone().requires_grad_()
        resnet.model(x)[0, 3].backward()

    base = median_seconds(forward_backward)
    core = median_seconds(
        lambda: [
            attribute(resnet.model, batch, 3, m, black=resnet.black())
            for m in ("integrated_gradients", "saliency", "gradcam")
        ]
    )
    grid = median_seconds(lambda: [explain(m, image, DEFAULT_METHODS) for m in (plain, resnet)])
    print(f"{'work':62} {'seconds':>8} {'x fwd+bwd':>10} {'goal s':>7}")
    for what, seconds, goal in (
        ("IG (50 steps) + Saliency + Grad-CAM, resnet-56, one image", core, 0.5),
        ("default grid: 2 models x 4 methods + deletion curves", grid, 3.0),
    ):
        print(f"{what:62} {seconds:8.3f} {seconds / base:10.1f} {goal:7.1f}  {'ok' if seconds <= goal else 'MISSED'}")


if __name__ == "__main__":
    main()
