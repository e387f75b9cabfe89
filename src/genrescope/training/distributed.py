"""Training on several processes (``torchrun``): rank and world size, the device, the
early-stopping decision shared by every rank, and leaving the process group cleanly."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[Dist, bool]:
    """This process's rank and world size, and whether this call created the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), False
    import torch.distributed as td

    owns = not td.is_initialized()
    if owns:
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(td.get_rank(), td.get_world_size()), owns


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device(f"cuda:{local}")
        return torch.device("cpu")
    return torch.device(name)


def agree(stop: bool, run) -> bool:
    """Rank 0's early-stopping decision, on every rank."""
    if run.dist.world <= 1:
        return stop
    flag = torch.tensor([int(stop)], device=run.device)
    torch.distributed.broadcast(flag, 0)
    return bool(flag.item())


def leave_group(run, owns_group: bool) -> None:
    """Leave the process group together and tear it down while Python is fully alive.

    DDP's reducer holds the gloo group: unless the wrapper is gone before the group is
    destroyed, gloo's threads die in interpreter finalisation ("terminate called without an
    active exception", SIGABRT), on whichever rank exits first.
    """
    import gc

    import torch.distributed as td

    run.net = run.model
    gc.collect()
    td.barrier()
    if owns_group:
        td.destroy_process_group()
