"""Data-parallel set-up the torchrun way: torchrun (single or multi node, any rendezvous) sets
RANK, WORLD_SIZE and LOCAL_RANK; the process group is NCCL on CUDA, gloo on the CPU. A plain
`ldl-train` is world size 1 and never touches torch.distributed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..devices import resolve_device
from ..errors import LdlError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Only this process writes checkpoints, logs and images."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str) -> World:
    """Pick the device (cuda:LOCAL_RANK under torchrun) and join the process group."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return World(device=resolve_device(device))
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LdlError(f"local rank {local_rank} has no GPU (this node has {torch.cuda.device_count()}); "
                           "lower --nproc-per-node")
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=chosen if backend == "nccl" else None)
    return World(rank, size, local_rank, chosen)


def cleanup(world: World) -> None:
    """Leave the group together: a process that tears down gloo while another is still in its last
    collective can abort."""
    if world.distributed and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def any_true(world: World, flag: bool) -> bool:
    """True on every process when it is True on any (e.g. a non-finite loss somewhere)."""
    if not world.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over(world: World, values: dict[str, float]) -> dict[str, float]:
    """The average of each logged number over the processes."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], device=world.device, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {k: float(v) / world.size for k, v in zip(keys, tensor.tolist(), strict=True)}


def broadcast_flag(world: World, flag: bool) -> bool:
    """Rank 0's decision, everywhere (e.g. stop after an interrupt)."""
    if not world.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.broadcast(value, src=0)
    return bool(value.item() > 0)
