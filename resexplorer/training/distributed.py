"""Training under torchrun: PyTorch's own engine, nothing home-made.

`torchrun --standalone --nproc-per-node N -m resexplorer train ...` starts N
processes ("ranks"). Each joins the process group here (NCCL on CUDA, one
GPU per local rank; gloo on the CPU), wraps every model of the race in
DistributedDataParallel, and takes its shard of each batch (engine.py), so
the configured batch size stays the global batch. Rank 0 alone writes the
runs; the others only train.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from ..errors import ResExplorerError
from ..system import resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among those training together."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def writer(self) -> bool:
        """Rank 0 writes the runs, the progress and the summary."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


ALONE = Ranks()


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device_name: str) -> tuple[Ranks, torch.device]:
    """Join torchrun's process group; the device of this rank (its own GPU
    on CUDA). Call once, before the race is built."""
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise ResExplorerError(
                f"local rank {ranks.local_rank} has no GPU of its own ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    elif device.type == "cpu":
        dist.init_process_group("gloo")
    else:
        raise ResExplorerError(f"torchrun trains on CUDA GPUs or on the CPU, not on {device.type}")
    return ranks, device


def leave(finished: bool) -> None:
    """Leave the process group. A rank that finished waits for the others
    first: one that tore its group down while rank 0 still wrote the last
    checkpoint sometimes aborted in gloo's teardown ("terminate called
    without an active exception"), failing a run that had trained. A rank
    leaving on an error does not wait: the others may never arrive, and
    torchrun stops them once this one exits."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def sums(values: list[float], device: torch.device) -> list[float]:
    """Each value summed over the ranks (every rank gets the sums)."""
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals.tolist()


def anyone(flag: bool, device: torch.device) -> bool:
    """Whether any rank says so: a Stop seen by one stops all, at the same step."""
    return sums([float(flag)], device)[0] > 0


def rank0_buffers(model: torch.nn.Module) -> None:
    """Every rank takes rank 0's buffers (BatchNorm's running statistics).
    DDP hands them out before each forward, but the last steps of an epoch
    leave each rank with those of its own shards: the end of an epoch (its
    test, its checkpoint) is rank 0's model on every rank."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def writer_first(ranks: Ranks, work: Callable[[], T]) -> T | None:
    """Rank 0 does `work` (creates or claims the runs, loads and caches the
    data) while the others wait; a user error it meets is raised on every
    rank, so none is left waiting. Returns the work's result on rank 0."""
    if not ranks.distributed:
        return work()
    result, problem = None, None
    if ranks.writer:
        try:
            result = work()
        except ResExplorerError as err:
            problem = str(err)
    said = [problem]
    dist.broadcast_object_list(said, src=0)
    if said[0] is not None:
        raise ResExplorerError(said[0])
    return result
