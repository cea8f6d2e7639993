"""Re-test a checkpoint on a data set, with the normalisation it trained on."""

from __future__ import annotations

from ..data.dataset import Dataset
from ..data.sources import Normalizer
from ..errors import DataError
from ..runs.checkpoints import model_from_checkpoint
from ..runs.recipe import RunOptions
from ..system import on_device, resolve_device, uses_channels_last
from .engine import autocast_for, evaluate


def evaluate_checkpoint(ckpt: dict, data: Dataset, device: str = "auto") -> dict:
    """{"model", "test_error", "test_loss", "n"} on data's test split; errors
    are fractions. The class list must match the one the model learned."""
    trained_on = ckpt["data"]
    if list(trained_on.get("classes", [])) != list(data.classes):
        raise DataError(
            f"the model learned the classes {trained_on.get('classes')} but {data.source} has {data.classes}; "
            "evaluate on the data source it was trained on"
        )
    torch_device = resolve_device(device)
    model = on_device(model_from_checkpoint(ckpt), torch_device)  # in the inputs' memory format
    normalize = Normalizer(trained_on["mean"], trained_on["std"], torch_device, uses_channels_last(torch_device))
    bf16 = RunOptions.from_dict(ckpt["train_config"]).bf16  # a checkpoint older than RunOptions may say it
    loss, error = evaluate(model, data.test, normalize, autocast_for(torch_device, bf16))
    return {"model": model.config.name, "test_error": error, "test_loss": loss, "n": len(data.test)}
