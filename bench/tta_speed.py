"""Speed of test-time augmentation and of upload decoding, each against a
baseline measured in the same process.

  one upload   10-crop TTA of one image on resnet-56, after decoding (goal <= 50 ms);
               baseline: one plain forward pass of that image
  test set     every strategy x merge for resnet-20 on 10,000 images (goal <= 120 s);
               baseline: one plain forward pass over the same images
  decoding     a 12-megapixel JPEG upload to the 32x32 model input (goal <= 0.5 s);
               baseline: Pillow decoding the same file at full size

Random weights and images serve: speed does not depend on them.
Run:  python bench/tta_speed.py [--images 10000]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.images import decode_upload  # noqa: E402
from resexplorer.data.sources import Normalizer  # noqa: E402
from resexplorer.nets.models import build_model  # noqa: E402
from resexplorer.science.tta import predict  # noqa: E402
from resexplorer.science.tta_eval import evaluate_strategies  # noqa: E402

NORMALIZE = Normalizer((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), "cpu", channels_last=True)


def model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name).eval().to(memory_format=torch.channels_last)


def median_seconds(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A 12-megapixel JPEG with photo-like content: smooth colour plus grain."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xs / width, ys / height, 0.5 + 0.5 * np.sin(xs / 300) * np.cos(ys / 200)], -1) * 200
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    n = parser.parse_args().images
    print(f"torch threads: {torch.get_num_threads()}")
    rows = []

    net = model("resnet-56")
    one = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8))
    with torch.inference_mode():
        base = median_seconds(lambda: net(NORMALIZE(one)))
    rows.append(
        (
            "10-crop TTA, one image, resnet-56",
            median_seconds(lambda: predict(net, one, "10-crop", "mean probs", NORMALIZE)),
            base,
            0.05,
        )
    )

    net = model("resnet-20")
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))
    labels = torch.randint(0, 10, (n,))

    def plain_pass():
        with torch.inference_mode():
            for i in range(0, n, 128):
                net(NORMALIZE(images[i : i + 128]))

    base = median_seconds(plain_pass, repeats=1)
    start = time.perf_counter()
    evaluate_strategies(net, images, labels, NORMALIZE)
    rows.append(
        (f"all strategies x merges, resnet-20, {n:,} images", time.perf_counter() - start, base, 120.0 * n / 10_000)
    )

    data = photo_jpeg()
    base = median_seconds(lambda: Image.open(io.BytesIO(data)).convert("RGB"), repeats=3)
    rows.append(
        (
            f"12-megapixel JPEG ({len(data) / 2**20:.1f} MB) to the 32x32 input",
            median_seconds(lambda: decode_upload("photo.jpg", data).model_input(), repeats=3),
            base,
            0.5,
        )
    )

    print(f"{'work':52} {'seconds':>8} {'x baseline':>11} {'goal s':>7}")
    for what, seconds, baseline, goal in rows:
        print(
            f"{what:52} {seconds:8.3f} {seconds / baseline:11.2f} {goal:7.2f}  {'ok' if seconds <= goal else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
