"""A run's trained model, ready to use on uint8 images: the weights of one
checkpoint, the normalisation it trained with, its class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sources import Normalizer
from ..runs.checkpoints import load_run_checkpoint, model_from_checkpoint
from ..runs.store import Run
from ..system import on_device, resolve_device, uses_channels_last


@dataclass
class LoadedModel:
    name: str  # the model's name, e.g. "resnet-56"
    model: torch.nn.Module  # eval mode, on `device`
    normalize: Normalizer
    classes: list[str]
    device: torch.device
    epoch: int

    def inputs(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> what the model sees."""
        return self.normalize(torch.as_tensor(images).to(self.device))

    def black(self) -> torch.Tensor:
        """A black pixel as the model sees it, [1, 3, 1, 1]."""
        return self.inputs(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor | np.ndarray, batch_size: int = 500) -> np.ndarray:
        """[B, classes] softmax probabilities of uint8 images."""
        images = torch.as_tensor(images)
        out = [
            F.softmax(self.model(self.inputs(images[i : i + batch_size])).float(), dim=1).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out).numpy()


def load_run_model(run: Run, which: int | str = "last", device: str = "auto") -> LoadedModel:
    """A run's model at a kept epoch or its latest checkpoint ('last')."""
    ckpt = load_run_checkpoint(run, which)
    torch_device = resolve_device(device)
    model = on_device(model_from_checkpoint(ckpt), torch_device)
    normalize = Normalizer(ckpt["data"]["mean"], ckpt["data"]["std"], torch_device, uses_channels_last(torch_device))
    return LoadedModel(
        model.config.name,
        model.eval(),
        normalize,
        list(ckpt["data"].get("classes", [])),
        torch_device,
        int(ckpt["epoch"]),
    )
