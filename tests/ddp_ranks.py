"""Run by tests/test_distributed.py under torchrun (2 processes, gloo): a
race of two models trained through the library's own torchrun path, each
rank then saving what it holds, so the test can compare ranks."""

import sys
from pathlib import Path

import torch

from resexplorer.data.sources import load_dataset
from resexplorer.nets.config import ModelConfig
from resexplorer.runs.recipe import RunOptions, TrainConfig
from resexplorer.training import distributed
from resexplorer.training.launch import new_race

# As test_distributed.TRAIN_FLAGS say it to the command line.
CONFIG = TrainConfig(epochs=2, batch_size=32, lr=0.05, train_subset=128, test_subset=64)
OPTIONS = RunOptions(device="cpu", log_every=1)
MODELS = [ModelConfig.from_name("resnet-8"), ModelConfig.from_name("plain-8")]  # classes: the data's


def main(out: Path, steps: int | None) -> None:
    """steps: train for just this many steps (one epoch of that many batches)."""
    config = CONFIG
    if steps:
        config = TrainConfig.from_dict({**CONFIG.to_dict(), "epochs": 1, "train_subset": steps * CONFIG.batch_size})
    ranks, device = distributed.join("cpu")
    finished = False
    try:
        data = load_dataset("synthetic")
        race, _ = new_race(MODELS, data, config, out / "runs", probes=[], ranks=ranks, device=device, options=OPTIONS)
        race.run()
        held = {m.name: {k: v.detach().clone() for k, v in m.model.state_dict().items()} for m in race.members}
        torch.save(held, out / f"rank{ranks.rank}.pt")
        finished = True
    finally:
        distributed.leave(finished)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
