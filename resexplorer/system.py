"""What this machine is: the device that trains and the library versions."""

from __future__ import annotations

import platform

import torch
from torch import nn

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a name; "auto" picks CUDA, then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda":
        index = device.index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but no CUDA GPU of that number is here; use cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' asked for, but no MPS (Apple GPU) is available here; use cpu or auto")
    return device


def race_devices(name: str, models: int) -> list[torch.device]:
    """Where a race's models train: with "auto" and several GPUs visible,
    spread over as many GPUs as there are models (each GPU gets a copy of
    the data set); otherwise all on the one device the name gives."""
    if name == "auto" and models > 1 and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [torch.device("cuda", i) for i in range(min(models, torch.cuda.device_count()))]
    return [resolve_device(name)]


def library_versions() -> dict:
    import numpy
    import torchvision

    from . import __version__

    return {
        "resexplorer": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
    }


def machine_info(device: torch.device) -> str:
    """The processor that trains: the GPU's name, or the CPU model and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads" if device.type == "cpu" else f"{device.type}: {model}"


def device_summary() -> tuple[str, str]:
    """(kind, description) of the device training would use: for the sidebar."""
    device = resolve_device("auto")
    kind = {"cuda": "GPU (CUDA)", "mps": "Apple GPU (MPS)"}.get(device.type, "CPU")
    return kind, machine_info(device)


def uses_channels_last(device: torch.device) -> bool:
    # Faster than NCHW with cuDNN and with the CPU's oneDNN kernels;
    # bench/train_throughput.py compares the two layouts.
    return device.type in ("cuda", "cpu")


def on_device(model: nn.Module, device: torch.device, channels_last: bool | None = None) -> nn.Module:
    """The model on the device, in the memory format its inputs come in
    (channels_last where uses_channels_last, unless told otherwise)."""
    model = model.to(device)
    if uses_channels_last(device) if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
