"""Training images/s, three ways, side by side in one process.

  (a) engine       the project's Race on the cached uint8 data set
  (b) torchvision  ImageFolder + RandomCrop/Flip/ToTensor/Normalize +
                   DataLoader + the same model in a standard loop
  (c) bound        the same model stepping on one fixed batch: the compute
                   bound, no data work at all
  (d), (e)         (a) and (c) with the training step compiled (torch.compile)

Run:  python bench/train_throughput.py --data FOLDER  (an image folder with
train/ and test/, such as the CIFAR-10 JPEG copy; default $RESEXPLORER_DATA)

Goals on a 2-core CPU: a/b >= 1.4, a/c >= 0.9 and d/c >= 1.15.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resexplorer.data.sources import load_dataset  # noqa: E402
from resexplorer.nets.config import ModelConfig  # noqa: E402
from resexplorer.nets.models import build_model  # noqa: E402
from resexplorer.runs.recipe import TrainConfig  # noqa: E402
from resexplorer.system import resolve_device  # noqa: E402
from resexplorer.training.engine import (  # noqa: E402
    Callback,
    Race,
    compiled_step,
    new_member,
    uses_channels_last,
)


def engine(data, model_name: str, batch: int, steps: int, device, compile: str = "off") -> float:
    """Images/s of the second epoch of a race over steps*batch images (the
    first epoch warms oneDNN/cuDNN up, and compiles where asked)."""
    rates = []

    class Rate(Callback):
        def on_epoch_end(self, member, event):
            rates.append(event.images_per_s)

    config = TrainConfig(
        epochs=2,
        batch_size=batch,
        train_subset=steps * batch,
        device=str(device),
        eval_every=10**6,
        schedule="constant",
        compile=compile,
    )
    member = new_member(ModelConfig.from_name(model_name), config, device, uses_channels_last(device))
    data.test = data.test.subset(torch.arange(2 * batch))  # keep the closing evaluation short
    Race([member], data, config, device, [Rate()]).run()
    return rates[-1]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def standard_loop(loader, model, device, steps: int, channels_last: bool = False) -> float:
    """Images/s of a textbook loop over a DataLoader (after 3 warm-up steps)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    seen, start = 0, None
    for i, (x, y) in enumerate(loader):
        if i == 3:
            _sync(device)
            start, seen = time.perf_counter(), 0
        if i == steps + 3:
            break
        torch.compiler.cudagraph_mark_step_begin()  # a compiled CUDA step replays graphs, as in the engine
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += x.shape[0]
    _sync(device)
    return seen / (time.perf_counter() - start)


def torchvision_pipeline(
    folder: Path, model_name: str, batch: int, steps: int, device, workers: int, channels_last: bool
) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ]
    )
    ds = datasets.ImageFolder(str(folder / "train"), transform=tf)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    model = build_model(model_name).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return standard_loop(loader, model, device, steps, channels_last)


def fixed_batch(model_name: str, batch: int, steps: int, device, channels_last: bool, compiled: bool = False) -> float:
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    model = build_model(model_name).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compiled:
        model = compiled_step(model, torch.device(device))  # as the engine compiles; in the warm-up steps
    return standard_loop([(x, y)] * (steps + 3), model, device, steps, channels_last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("RESEXPLORER_DATA"), help="image folder with train/ and test/")
    parser.add_argument("--model", default="resnet-20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to try for (b); the best counts"
    )
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data FOLDER or set RESEXPLORER_DATA")
    device = resolve_device(args.device)
    cl = uses_channels_last(device)
    print(
        f"device {device} ({torch.get_num_threads()} threads), {args.model}, batch {args.batch_size}, "
        f"{args.steps} timed steps each"
    )

    t = time.perf_counter()
    data = load_dataset(args.data)
    print(f"cached data set load: {time.perf_counter() - t:.2f} s ({len(data.train)} + {len(data.test)} images)")

    rows = {}
    rows["(a) engine"] = a = engine(data, args.model, args.batch_size, args.steps, device)
    started = time.perf_counter()
    rows["(d) engine, compiled"] = d = engine(data, args.model, args.batch_size, args.steps, device, compile="on")
    compile_run_s = time.perf_counter() - started
    by_workers = {
        w: torchvision_pipeline(Path(args.data), args.model, args.batch_size, args.steps, device, w, False)
        for w in args.workers
    }
    for w, rate in by_workers.items():
        rows[f"(b) torchvision, {w} workers"] = rate
    best_workers = max(by_workers, key=by_workers.get)
    b = by_workers[best_workers]
    rows[f"(b') torchvision, {best_workers} workers, engine's memory format"] = b_same = torchvision_pipeline(
        Path(args.data), args.model, args.batch_size, args.steps, device, best_workers, cl
    )
    rows["(c) fixed batch, engine's memory format"] = c = fixed_batch(
        args.model, args.batch_size, args.steps, device, cl
    )
    rows["(c') fixed batch, NCHW"] = fixed_batch(args.model, args.batch_size, args.steps, device, False)
    rows["(e) fixed batch, compiled"] = e = fixed_batch(args.model, args.batch_size, args.steps, device, cl, True)

    width = max(map(len, rows))
    for name, rate in rows.items():
        print(f"{name:<{width}}  {rate:8.0f} images/s")
    print(f"a/b  = {a / b:.2f}   (goal >= 1.4; b is the best textbook torchvision pipeline)")
    print(f"a/b' = {a / b_same:.2f}   (same memory format on both sides: the data pipeline alone)")
    print(f"a/c  = {a / c:.2f}   (goal >= 0.9)")
    print(f"d/c  = {d / c:.2f}   (goal >= 1.15: the compiled engine against the eager compute bound)")
    print(f"d/a  = {d / a:.2f}   (compiled engine against eager engine); e/c = {e / c:.2f} (compiled bound)")
    print(f"the compiled race took {compile_run_s:.0f} s in all, compiling included")


if __name__ == "__main__":
    main()
